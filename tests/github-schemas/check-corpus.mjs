#!/usr/bin/env node
// Usage: node check-corpus.mjs CORPUS.json
//
// Holds everything mainline's GitHub side sent and was answered (written by the Rust test
// crates/mainline-github/tests/github_schemas.rs) against GitHub's published schemas:
//   { "exchanges": [{ method, path, query, request_body, status, response_body }],
//     "webhooks":  [{ name, event, payload }] }
// GraphQL requests (POST /graphql) validate against GitHub's GraphQL schema, their variables
// coerce, and their answers execute against it unchanged; REST requests name an operation of
// GitHub's REST description with declared query parameters, and their answers validate
// against that operation's response schema; webhook payloads validate against GitHub's
// webhook description. Prints every problem and exits 1 if there is any.

import { readFileSync } from 'node:fs';
import { checkGraphqlExchange, checkRestExchange, checkWebhook } from './lib/github.mjs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node check-corpus.mjs CORPUS.json');
  process.exit(2);
}
const corpus = JSON.parse(readFileSync(file, 'utf8'));
const json = (text, what) => {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what}: not JSON (${e.message}): ${text.slice(0, 200)}`);
  }
};

const problems = [];
let graphql = 0;
let rest = 0;
for (const [i, x] of (corpus.exchanges ?? []).entries()) {
  const name = `exchange ${i} (${x.method} ${x.path}${x.query ? `?${x.query}` : ''} → ${x.status})`;
  try {
    const response = json(x.response_body, `${name} answer`);
    if (x.method === 'POST' && x.path === '/graphql') {
      graphql += 1;
      problems.push(...checkGraphqlExchange(json(x.request_body, `${name} request`), x.status, response, name));
    } else {
      rest += 1;
      problems.push(...checkRestExchange({ ...x, response }, name));
    }
  } catch (e) {
    problems.push(e.message);
  }
}
for (const w of corpus.webhooks ?? []) problems.push(...checkWebhook(w.event, w.payload, `webhook ${w.name}`));

for (const p of problems) console.error(`✗ ${p}`);
const hooks = (corpus.webhooks ?? []).length;
console.log(`github-schemas: ${graphql} GraphQL and ${rest} REST exchanges, ${hooks} webhook payloads checked; ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
