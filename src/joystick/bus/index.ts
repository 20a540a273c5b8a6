export { Bus, type BusOptions } from './api.js';
export {
  CONFIG_ENV_VAR,
  DEFAULT_CONFIG_PATH,
  defaultBusConfig,
  loadBusConfig,
  parseBusConfig,
  validateBusConfig,
  type BindingConfig,
  type BusConfig,
  type ClientProperties,
  type ExchangeConfig,
  type LoadBusConfigOptions,
  type LoadedBusConfig,
  type QosConfig,
  type QueueConfig,
  type TlsConfig,
} from './config.js';
export { buildConnectPlan, type ConnectPlan, type ConnectPlanOptions } from './connect-options.js';
export { BusConnection, type BusConnectionEvents, type BusConnectionOptions } from './connection.js';
export {
  Consumer,
  type ConsumerExit,
  type ConsumerOptions,
  type ConsumerStats,
  type MessageHandler,
} from './consumer.js';
export {
  iterateDumpFile,
  parseDump,
  parseDumpLine,
  readDumpFile,
  toDump,
  toDumpLine,
  type DumpLocation,
} from './dump.js';
export {
  BadDeclaration,
  ConsumerCanceled,
  Drop,
  HaltConsumer,
  InvalidMessage,
  Nack,
  PublishFailed,
  type HaltOptions,
} from './errors.js';
export {
  BASE_SCHEMA,
  createMessage,
  DEBUG,
  DEFAULT_MAX_BODY_BYTES,
  ERROR,
  formatSentAt,
  INFO,
  isSeverity,
  parseDelivery,
  routingKeyFor,
  SEVERITIES,
  toAmqp,
  toAmqpTable,
  WARNING,
  type AmqpPublish,
  type HeaderValue,
  type JsonObject,
  type Message,
  type MessageSubjects,
  type NewMessage,
  type ParseOptions,
  type PublishSettings,
  type ReceivedMessage,
  type Severity,
} from './message.js';
export { Publisher, type PublisherOptions, type PublishOptions } from './publisher.js';
