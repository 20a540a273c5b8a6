#!/usr/bin/env node
const { main } = await import('../dist/joystick/cli.js');
const code = await main(process.argv);
process.stdout.write('', () => process.exit(code));
