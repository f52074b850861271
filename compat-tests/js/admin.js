// Run kafkajs admin operations in order and report each result or error.
// stdin: {brokers, operations: [{op, args}]} where op is one of
//   createTopics {topics: [{topic, numPartitions, configEntries: [{name, value}]}]}
//   listTopics {}
//   fetchTopicMetadata {topics: [name]}
//   describeTopicConfigs {topic}
//   deleteTopics {topics: [name]}
//   describeCluster {}
// stdout: {results: [{ok: value} | {error: {name, type, code, message}}]}
'use strict'
const { ConfigResourceTypes } = require('kafkajs')
const { makeKafka, describeError, main } = require('./common')

const OPERATIONS = {
  createTopics: (admin, args) => admin.createTopics({ topics: args.topics, waitForLeaders: true, timeout: 10000 }),
  listTopics: (admin) => admin.listTopics(),
  fetchTopicMetadata: (admin, args) => admin.fetchTopicMetadata({ topics: args.topics }),
  describeTopicConfigs: (admin, args) =>
    admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: args.topic }],
    }),
  deleteTopics: (admin, args) => admin.deleteTopics({ topics: args.topics, timeout: 10000 }),
  describeCluster: (admin) => admin.describeCluster(),
}

main(async (input) => {
  const admin = makeKafka(input, 'compat-kafkajs-admin').admin()
  await admin.connect()
  const results = []
  try {
    for (const { op, args } of input.operations) {
      try {
        const value = await OPERATIONS[op](admin, args || {})
        results.push({ ok: value === undefined ? null : value }) // undefined would vanish in JSON
      } catch (error) {
        results.push({ error: describeError(error) })
      }
    }
  } finally {
    await admin.disconnect()
  }
  return { results }
})
