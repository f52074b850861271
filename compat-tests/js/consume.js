// Consume `count` records from a topic with a kafkajs consumer group (kafkajs has no assign()).
// stdin: {brokers, topic, groupId, count, timeoutMs}
// stdout: {records: [{partition, offset, key, value, headers: [[name, b64]], timestamp}]}
'use strict'
const { makeKafka, bufferToB64, main } = require('./common')

main(async (input) => {
  const kafka = makeKafka(input, 'compat-kafkajs-consumer')
  const consumer = kafka.consumer({ groupId: input.groupId, maxWaitTimeInMs: 100 })
  await consumer.connect()
  const records = []
  try {
    await consumer.subscribe({ topics: [input.topic], fromBeginning: true })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`kafkajs consumed ${records.length}/${input.count} in ${input.timeoutMs} ms`)),
        input.timeoutMs,
      )
      consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          records.push({
            partition,
            offset: message.offset,
            key: bufferToB64(message.key),
            value: bufferToB64(message.value),
            headers: Object.entries(message.headers || {}).map(([k, v]) => [k, bufferToB64(v)]),
            timestamp: message.timestamp,
          })
          if (records.length >= input.count) {
            clearTimeout(timer)
            resolve()
          }
        },
      }).catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return { records }
})
