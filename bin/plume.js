#!/usr/bin/env node
// The AWS SDK is pinned (package-lock.json) to releases that support Node 20; its notice about future
// releases needing Node 22 is for whoever upgrades it, not for every run of plume.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('../dist/plume/cli.js');
const code = await main(process.argv);
// Flush stdout before exiting: idle keep-alive sockets must not hold a finished command open.
process.stdout.write('', () => process.exit(code));
