import { XMLBuilder, XMLParser } from 'fast-xml-parser';

/** A parsed XML element: child elements by name, `@_`-prefixed attributes; lists are always arrays. */
export type XmlNode = { [name: string]: XmlValue };
export type XmlValue = string | XmlNode | XmlNode[];

// EC2 lists are `<xSet><item>..</item></xSet>`: forcing `item` to an array keeps one-element lists lists.
// Values stay strings (account ids and sizes must not turn into numbers on the way back out).
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  ignoreDeclaration: true,
  isArray: (name) => name === 'item',
});

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  suppressEmptyNode: true,
});

export function parseXml(text: string): XmlNode {
  return parser.parse(text) as XmlNode;
}

export function buildXml(root: XmlNode): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build(root)}`;
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function child(node: XmlValue | undefined, name: string): XmlValue | undefined {
  if (node === undefined || typeof node === 'string' || Array.isArray(node)) return undefined;
  return node[name];
}

export function text(node: XmlValue | undefined, name: string): string | undefined {
  const v = child(node, name);
  return typeof v === 'string' ? v : undefined;
}

/** The `item`s of an EC2 list element (`<imagesSet><item>..`), empty when the list is empty or absent. */
export function items(node: XmlValue | undefined, listName: string): XmlNode[] {
  const list = child(node, listName);
  const its = child(list, 'item');
  return Array.isArray(its) ? its : [];
}

/** The single element under the document root (`<DescribeImagesResponse>` ...). */
export function responseBody(doc: XmlNode): XmlNode {
  const key = Object.keys(doc).find((k) => !k.startsWith('?'));
  const body = key ? doc[key] : undefined;
  return body && typeof body === 'object' && !Array.isArray(body) ? body : {};
}

/** Replace an EC2 list's items; an empty list becomes an empty element as EC2 renders it. */
export function setItems(node: XmlNode, listName: string, list: XmlNode[]): void {
  node[listName] = list.length ? { item: list } : '';
}

/** Build the XML for a list of plain records as EC2 renders them (`<item>` per entry). */
export function itemList(entries: XmlNode[]): XmlNode | string {
  return entries.length ? { item: entries } : '';
}
