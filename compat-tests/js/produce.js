// Produce a list of records to one partition in one send() with kafkajs.
// stdin: {brokers, topic, partition, compression, acks, idempotent, messages: [{key, value, headers: [[name, b64]], timestamp}]}
//        (key/value base64 or null; timestamp ms or null)
// stdout: {metadata: <kafkajs RecordMetadata[]>}
'use strict'
const { CompressionTypes } = require('kafkajs')
const { makeKafka, b64ToBuffer, main } = require('./common')

// kafkajs 2.2.4 ships only GZIP; Snappy, LZ4 and ZSTD need extra codec packages
// (kafkajs-snappy, kafkajs-lz4, @kafkajs/zstd), which the compat suite does not install.
const CODECS = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }

main(async (input) => {
  if (!(input.compression in CODECS)) throw new Error(`kafkajs codec not available: ${input.compression}`)
  const kafka = makeKafka(input, 'compat-kafkajs-producer')
  const producer = kafka.producer({
    allowAutoTopicCreation: true,
    idempotent: Boolean(input.idempotent),
    maxInFlightRequests: input.idempotent ? 1 : undefined,
  })
  await producer.connect()
  try {
    const metadata = await producer.send({
      topic: input.topic,
      acks: input.acks,
      compression: CODECS[input.compression],
      messages: input.messages.map((m) => {
        const headers = {}
        for (const [name, value] of m.headers) headers[name] = b64ToBuffer(value)
        const message = { partition: input.partition, key: b64ToBuffer(m.key), value: b64ToBuffer(m.value), headers }
        if (m.timestamp !== null && m.timestamp !== undefined) message.timestamp = String(m.timestamp)
        return message
      }),
    })
    return { metadata }
  } finally {
    await producer.disconnect()
  }
})
