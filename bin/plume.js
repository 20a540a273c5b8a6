#!/usr/bin/env node
const { main } = await import('../dist/plume/cli.js');
const code = await main(process.argv);
// Flush stdout before exiting: idle keep-alive sockets must not hold a finished command open.
process.stdout.write('', () => process.exit(code));
