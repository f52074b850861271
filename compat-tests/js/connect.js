// Connect a kafkajs producer (ApiVersions, SASL, Metadata) and report how it went.
// stdin: {brokers, ssl?, sasl?}
// stdout: {ok: true} or {error: {name, type, code, message}}
'use strict'
const { makeKafka, describeError, main } = require('./common')

main(async (input) => {
  const kafka = makeKafka({ ...input, clientId: 'compat-kafkajs-connect' }, 'compat-kafkajs-connect')
  const producer = kafka.producer()
  try {
    await producer.connect()
    await producer.disconnect()
    return { ok: true }
  } catch (error) {
    return { error: describeError(error) }
  }
})
