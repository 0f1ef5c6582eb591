#!/usr/bin/env node
import { runCli } from './cli/index.js'
import { processIo } from './cli/io.js'

const code = await runCli(process.argv.slice(2), processIo)
// A listening server keeps the process alive; every other command ends here.
if (code !== 0) process.exitCode = code
