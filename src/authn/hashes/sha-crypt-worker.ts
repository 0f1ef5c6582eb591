/**
 * Source of the worker that runs unixcrypt (pure JavaScript, tens of milliseconds per hash) off the
 * event loop. It is evaluated from a string rather than loaded from a file because a file path
 * cannot serve both src/*.ts under vitest and compiled dist/ on Node 20, which cannot run .ts.
 * Node 20 evaluates `eval: true` workers as CommonJS scripts, and unixcrypt is ESM-only, so the
 * parent resolves its URL and the worker imports it from there.
 *
 * Protocol: one job at a time; receives { password, setting }, answers { hash } or { error }.
 */
export const shaCryptWorkerSource = `
'use strict'
const { parentPort, workerData } = require('node:worker_threads')
import(workerData.unixcryptUrl).then(({ encrypt }) => {
  parentPort.on('message', ({ password, setting }) => {
    try {
      parentPort.postMessage({ hash: encrypt(password, setting) })
    } catch (err) {
      parentPort.postMessage({ error: String((err && err.message) || err) })
    }
  })
})
`
