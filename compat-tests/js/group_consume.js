// A kafkajs consumer group of several members in one process: each member subscribes
// fromBeginning, and the group reads until `count` records arrived in total.
// stdin: {brokers, topic, groupId, members, count, timeoutMs, sessionTimeout, heartbeatInterval}
// stdout: {records: [{member, partition, offset, value}], assignments: {member: {topic: [p]}},
//          joinedMs: ms from start until every member had joined}
'use strict'
const { makeKafka, bufferToB64, main } = require('./common')

main(async (input) => {
  const kafka = makeKafka(input, 'compat-kafkajs-group')
  const started = Date.now()
  const consumers = []
  for (let i = 0; i < input.members; i++) {
    consumers.push(kafka.consumer({
      groupId: input.groupId,
      maxWaitTimeInMs: 100,
      sessionTimeout: input.sessionTimeout || 10000,
      heartbeatInterval: input.heartbeatInterval || 500,
    }))
  }
  const records = []
  const assignments = {}
  let joined = 0
  let joinedMs = null
  try {
    await Promise.all(consumers.map((c) => c.connect()))
    await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`kafkajs group consumed ${records.length}/${input.count} in ${input.timeoutMs} ms`)),
        input.timeoutMs,
      )
      consumers.forEach((consumer, member) => {
        consumer.on(consumer.events.GROUP_JOIN, (event) => {
          assignments[member] = event.payload.memberAssignment
          joined += 1
          if (joined >= input.members && joinedMs === null) joinedMs = Date.now() - started
        })
        consumer.subscribe({ topics: [input.topic], fromBeginning: true })
          .then(() => consumer.run({
            autoCommit: true,
            eachMessage: async ({ partition, message }) => {
              records.push({ member, partition, offset: message.offset, value: bufferToB64(message.value) })
              if (records.length >= input.count) {
                clearTimeout(timer)
                resolve()
              }
            },
          }))
          .catch(reject)
      })
    })
  } finally {
    await Promise.all(consumers.map((c) => c.disconnect()))
  }
  return { records, assignments, joinedMs }
})
