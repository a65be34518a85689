// The static half of issue 16: what mainline sends and what its fixtures claim GitHub sends,
// held against GitHub's published schemas. The other half (every exchange of the fake with
// the real client) is crates/mainline-github/tests/github_schemas.rs, which runs
// ../check-corpus.mjs.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  CRATE, checkGraphqlExchange, checkRestExchange, checkWebhook, graphqlDocuments, validateDocument, validateRestSchema,
} from '../lib/github.mjs';

const fixture = (rel) => JSON.parse(readFileSync(path.join(CRATE, 'fixtures', rel), 'utf8'));
const queueDoc = () => graphqlDocuments().find((d) => d.file === 'merge_queue.graphql').text;
const VARS = { owner: 'octocat', name: 'Hello-World', branch: 'main', first: 100, after: null };

test('every GraphQL document mainline sends validates against GitHub\'s schema', () => {
  const docs = graphqlDocuments();
  assert.ok(docs.length >= 1, 'no documents found in crates/mainline-github/graphql/');
  for (const d of docs) assert.deepEqual(validateDocument(d.text, d.file), []);
});

test('the checker refuses a misspelt field, a wrong argument and a wrong variable type', () => {
  const doc = queueDoc();
  const misspelt = validateDocument(doc.replace('headCommit', 'headComit'), 'misspelt');
  assert.match(misspelt.join('\n'), /Cannot query field "headComit" on type "MergeQueueEntry"/);
  assert.notDeepEqual(validateDocument(doc.replace('branch: $branch', 'ref: $branch'), 'argument'), []);
  assert.notDeepEqual(validateDocument(doc.replace('$first: Int!', '$first: String!'), 'variable type'), []);
  const badVars = checkGraphqlExchange({ query: doc, variables: { ...VARS, first: '100' } }, 200, fixture('api/merge_queue_response.json'), 'vars');
  assert.match(badVars.join('\n'), /first/);
});

test('the fake\'s GraphQL templates have the query\'s shape under GitHub\'s schema', () => {
  const page = fixture('api/merge_queue_response.json');
  assert.deepEqual(checkGraphqlExchange({ query: queueDoc(), variables: VARS }, 200, page, 'merge_queue_response.json'), []);
  for (const f of ['api/graphql_errors.json', 'api/graphql_rate_limited.json']) {
    assert.deepEqual(checkGraphqlExchange({ query: queueDoc(), variables: VARS }, 200, fixture(f), f), []);
  }
  // The judge bites: a wrong type, an unknown enum value, a null for a non-null field, an extra field.
  const node = (patch) => {
    const p = structuredClone(page);
    Object.assign(p.data.repository.mergeQueue.entries.nodes[0], patch);
    return checkGraphqlExchange({ query: queueDoc(), variables: VARS }, 200, p, 'mutated');
  };
  assert.notDeepEqual(node({ position: '1' }), []);
  assert.notDeepEqual(node({ state: 'DONE' }), []);
  assert.notDeepEqual(node({ position: null }), []);
  assert.notDeepEqual(node({ group: 7 }), []);
});

test('the fake\'s REST templates validate against their operations in GitHub\'s REST description', () => {
  const compare = { method: 'GET', path: '/repos/octocat/Hello-World/compare/a...b', query: 'per_page=1' };
  assert.deepEqual(checkRestExchange({ ...compare, status: 200, response: fixture('api/compare_response.json') }, 'compare_response.json'), []);
  assert.deepEqual(checkRestExchange({ ...compare, status: 404, response: fixture('api/not_found.json') }, 'not_found.json'), []);
  const token = { method: 'POST', path: '/app/installations/12345678/access_tokens', query: '' };
  assert.deepEqual(checkRestExchange({ ...token, status: 201, response: fixture('api/installation_token_response.json') }, 'installation_token_response.json'), []);
  for (const f of ['bad_credentials', 'not_found', 'rate_limited', 'server_error']) {
    assert.deepEqual(validateRestSchema('basic-error', fixture(`api/${f}.json`), f), []);
  }
  // The judge bites: an unknown path, an undeclared query parameter, an undocumented status, a wrong shape.
  assert.notDeepEqual(checkRestExchange({ ...compare, path: '/repos/o/r/comparison/a...b', status: 200, response: {} }, 'path'), []);
  assert.notDeepEqual(checkRestExchange({ ...compare, query: 'limit=1', status: 404, response: {} }, 'query'), []);
  assert.notDeepEqual(checkRestExchange({ ...compare, status: 418, response: {} }, 'status'), []);
  assert.notDeepEqual(checkRestExchange({ ...compare, status: 200, response: { status: 'ahead' } }, 'shape'), []);
});

test('every webhook fixture validates against GitHub\'s webhook description', () => {
  const dir = path.join(CRATE, 'fixtures/webhook');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 4);
  for (const f of files) {
    const event = ['merge_group', 'push', 'ping'].find((e) => f.startsWith(e));
    assert.ok(event, `${f}: name it after its event (merge_group_*, push*, ping*)`);
    assert.deepEqual(checkWebhook(event, fixture(`webhook/${f}`), f), []);
  }
  const destroyed = fixture('webhook/merge_group_destroyed.json');
  for (const reason of ['merged', 'invalidated', 'dequeued']) assert.deepEqual(checkWebhook('merge_group', { ...destroyed, reason }, reason), []);
  assert.notDeepEqual(checkWebhook('merge_group', { ...destroyed, reason: 'timed_out' }, 'timed_out'), []);
});
