// Shared helpers for the kafkajs compat scripts: read one JSON document from stdin, write one
// JSON document to stdout, send kafkajs logs to stderr (never stdout, which carries the result).
'use strict'
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

function readStdinJson() {
  return new Promise((resolve, reject) => {
    const chunks = []
    process.stdin.on('data', (chunk) => chunks.push(chunk))
    process.stdin.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
      } catch (error) {
        reject(error)
      }
    })
    process.stdin.on('error', reject)
  })
}

const stderrLogCreator = () => ({ namespace, level, label, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`[kafkajs ${label} ${namespace}] ${message} ${JSON.stringify(extra)}\n`)
}

// input.ssl: {ca, cert, key} file paths (true for system CAs); input.sasl: {mechanism, username,
// password} with kafkajs' mechanism names (plain, scram-sha-256, scram-sha-512).
function sslOptions(ssl) {
  if (!ssl) return undefined
  if (ssl === true) return true
  const options = {}
  if (ssl.ca) options.ca = [fs.readFileSync(ssl.ca, 'utf8')]
  if (ssl.cert) options.cert = fs.readFileSync(ssl.cert, 'utf8')
  if (ssl.key) options.key = fs.readFileSync(ssl.key, 'utf8')
  return options
}

function makeKafka(input, clientId) {
  return new Kafka({
    clientId: input.clientId || clientId,
    brokers: input.brokers,
    ssl: sslOptions(input.ssl),
    sasl: input.sasl || undefined,
    connectionTimeout: 5000,
    requestTimeout: 20000,
    retry: { retries: 3, initialRetryTime: 100 },
    logLevel: logLevel.WARN,
    logCreator: stderrLogCreator,
  })
}

function b64ToBuffer(text) {
  return text === null || text === undefined ? null : Buffer.from(text, 'base64')
}

function bufferToB64(buffer) {
  return buffer === null || buffer === undefined ? null : Buffer.from(buffer).toString('base64')
}

function describeError(error) {
  return {
    name: error.name,
    type: error.type || null,
    code: error.code === undefined ? null : error.code,
    message: error.message,
    errors: Array.isArray(error.errors) ? error.errors.map(describeError) : undefined,
  }
}

async function main(run) {
  try {
    const input = await readStdinJson()
    const output = await run(input)
    process.stdout.write(JSON.stringify(output))
    process.exit(0)
  } catch (error) {
    process.stderr.write(`kafkajs script failed: ${JSON.stringify(describeError(error))}\n${error.stack}\n`)
    process.exit(1)
  }
}

module.exports = { makeKafka, b64ToBuffer, bufferToB64, describeError, main }
