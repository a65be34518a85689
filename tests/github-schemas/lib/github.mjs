// GitHub's published schemas, loaded once, and the checks mainline's GitHub side must pass:
// GraphQL documents validate against `@octokit/graphql-schema`; REST requests name an operation
// of `@octokit/openapi` and its responses validate against that operation's schema; GraphQL
// answers are executed against the schema (graphql-js) with a resolver that returns the answer
// itself, so a wrong type, a null where GitHub promises a value, an unknown enum value or an
// extra field shows; webhook payloads validate against `@octokit/openapi-webhooks`.
//
// Every check returns a list of problems (strings naming what and where); an empty list is a
// pass. Must never: skip a check because a schema part is missing (that is a problem too).

import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { buildClientSchema, execute, getOperationAST, parse, validate } from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';
import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(PKG, '../..');
export const CRATE = path.join(ROOT, 'crates/mainline-github');
/** Where the GraphQL documents mainline sends live (the Rust client `include_str!`s them). */
export const GRAPHQL_DIR = path.join(CRATE, 'graphql');

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const pkgFile = (name, rel) => path.join(PKG, 'node_modules', name, rel);

let graphqlSchema;
/**
 * GitHub's GraphQL schema (github.com), from its introspection result: the package's own
 * validator uses the same file (its `schema.graphql` defines some fields twice and does not build).
 */
export function githubSchema() {
  graphqlSchema ??= buildClientSchema(readJson(pkgFile('@octokit/graphql-schema', 'schema.json')));
  return graphqlSchema;
}

/** Every `*.graphql` file mainline can send: `[{ file, text }]`, sorted by name. */
export function graphqlDocuments() {
  return readdirSync(GRAPHQL_DIR)
    .filter((f) => f.endsWith('.graphql'))
    .sort()
    .map((file) => ({ file, text: readFileSync(path.join(GRAPHQL_DIR, file), 'utf8') }));
}

const where = (e) => (e.locations?.length ? ` (line ${e.locations[0].line}, column ${e.locations[0].column})` : '');

/** Problems of one GraphQL document: syntax, then every validation rule against the schema. */
export function validateDocument(text, name) {
  let doc;
  try {
    doc = parse(text);
  } catch (e) {
    return [`${name}: does not parse: ${e.message}`];
  }
  const problems = validate(githubSchema(), doc).map((e) => `${name}: ${e.message}${where(e)}`);
  if (!problems.length && !getOperationAST(doc)) problems.push(`${name}: needs exactly one operation`);
  return problems;
}

/** Problems of a GraphQL request `{ query, variables }` and the answer the fake gave to it. */
export function checkGraphqlExchange(request, status, answer, name) {
  const problems = validateDocument(request?.query ?? '', name);
  if (problems.length) return problems;
  const doc = parse(request.query);
  const op = getOperationAST(doc);
  const vars = getVariableValues(githubSchema(), op.variableDefinitions ?? [], request.variables ?? {});
  for (const e of vars.errors ?? []) problems.push(`${name}: variables: ${e.message}`);
  if (status !== 200) {
    // Rate limits, credentials and outages come back as REST-style errors before any GraphQL.
    if (!ANY_ENDPOINT.has(status)) return [...problems, `${name}: GitHub's GraphQL endpoint answers 200, or ${[...ANY_ENDPOINT].join('/')}, not ${status}`];
    return [...problems, ...validateRestSchema('basic-error', answer, `${name} (${status})`)];
  }
  if (answer?.errors !== undefined) {
    // GitHub reports query and resolution failures as a 200 with `errors` (GraphQL spec §7.1.2).
    if (!Array.isArray(answer.errors) || !answer.errors.length) problems.push(`${name}: \`errors\` must be a non-empty list`);
    for (const e of answer.errors ?? []) if (typeof e?.message !== 'string') problems.push(`${name}: an error lacks a string \`message\``);
    if (answer.data !== null && answer.data !== undefined) problems.push(`${name}: a failed query answers \`data: null\``);
    return problems;
  }
  const result = execute({
    schema: githubSchema(),
    document: doc,
    rootValue: answer?.data,
    variableValues: vars.coerced,
    // Resolve every field from the answer itself, by its response key (alias or name).
    fieldResolver: (source, _args, _ctx, info) => (source == null ? undefined : source[info.path.key]),
    typeResolver: (value) => value?.__typename,
  });
  for (const e of result.errors ?? []) problems.push(`${name}: ${e.message} at ${e.path?.join('.')}`);
  const executed = JSON.parse(JSON.stringify(result.data ?? null));
  if (!problems.length && !isDeepStrictEqual(executed, answer?.data)) {
    problems.push(`${name}: the answer's data differs from its shape under GitHub's schema ` +
      `(an extra field, or a value of the wrong type):\n  answered ${JSON.stringify(answer?.data)}\n  schema-shaped ${JSON.stringify(executed)}`);
  }
  return problems;
}

// OpenAPI 3.0 marks nullable values with `nullable: true`, which JSON Schema does not know.
function toJsonSchema(node) {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) if (k !== 'nullable' && k !== 'discriminator') out[k] = toJsonSchema(v);
  if (node.nullable !== true) return out;
  if (typeof out.type === 'string') {
    out.type = [out.type, 'null'];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
    return out;
  }
  return { anyOf: [out, { type: 'null' }] };
}

function formatsIn(node, into = new Set()) {
  if (Array.isArray(node)) node.forEach((n) => formatsIn(n, into));
  else if (node && typeof node === 'object') {
    if (typeof node.format === 'string') into.add(node.format);
    Object.values(node).forEach((n) => formatsIn(n, into));
  }
  return into;
}

function makeAjv(AjvClass, id, components) {
  const ajv = new AjvClass({ strict: false, allErrors: true, validateSchema: false, logger: false });
  addFormats(ajv);
  // Formats JSON Schema does not define (`int64`, `uri-template`, …) are annotations here.
  for (const f of formatsIn(components)) if (!ajv.formats[f]) ajv.addFormat(f, true);
  ajv.addSchema({ $id: id, components }, id);
  return ajv;
}

let rest;
/** GitHub's REST description (api.github.com) and a validator over its components. */
export function restApi() {
  if (!rest) {
    const doc = readJson(pkgFile('@octokit/openapi', 'generated/api.github.com.json'));
    const components = toJsonSchema(doc.components);
    rest = { doc, components, ajv: makeAjv(Ajv, 'rest', components) };
  }
  return rest;
}

let hooks;
/** GitHub's webhook description (api.github.com, OpenAPI 3.1) and a validator over it. */
export function webhookApi() {
  if (!hooks) {
    const doc = readJson(pkgFile('@octokit/openapi-webhooks', 'generated/api.github.com.json'));
    const components = toJsonSchema(doc.components);
    hooks = { doc, ajv: makeAjv(Ajv2020, 'hooks', components) };
  }
  return hooks;
}

const describe = (errors) => (errors ?? []).slice(0, 8).map((e) => `${e.instancePath || '(root)'} ${e.message}` +
  (e.params?.missingProperty ? '' : e.params?.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : '')).join('; ');

/** Problems of `value` against `#/components/schemas/<schema>` of the REST description. */
export function validateRestSchema(schema, value, name) {
  const { ajv, components } = restApi();
  if (!components.schemas[schema]) return [`${name}: GitHub's REST description has no schema \`${schema}\``];
  const check = ajv.getSchema(`rest#/components/schemas/${schema}`);
  return check(value) ? [] : [`${name}: not a \`${schema}\`: ${describe(check.errors)}`];
}

const resolve = (doc, node) => (node?.$ref ? node.$ref.slice(2).split('/').reduce((n, k) => n?.[k], doc) : node);

/** The REST operation for `method` and a concrete `pathname`, or undefined. */
export function findOperation(method, pathname) {
  const { doc } = restApi();
  for (const [template, item] of Object.entries(doc.paths)) {
    const op = item[method.toLowerCase()];
    if (!op) continue;
    const params = (op.parameters ?? []).map((p) => resolve(doc, p));
    const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_, name) =>
      params.find((p) => p.name === name)?.['x-multi-segment'] ? '(.+)' : '([^/]+)');
    if (new RegExp(`^${pattern}$`).test(pathname)) return { template, op, params };
  }
  return undefined;
}

/** Statuses GitHub documents for every endpoint (rate limits, credentials, outages), with a `basic-error` body. */
const ANY_ENDPOINT = new Set([401, 403, 429, 500, 502, 503]);

/** Problems of one REST exchange: the operation exists, its query parameters are declared, the answer validates. */
export function checkRestExchange({ method, path: pathname, query, status, response }, name) {
  const { doc, ajv } = restApi();
  const found = findOperation(method, pathname);
  if (!found) return [`${name}: ${method} ${pathname} is not an operation in GitHub's REST description`];
  const problems = [];
  for (const [key, value] of new URLSearchParams(query ?? '')) {
    const p = found.params.find((x) => x.in === 'query' && x.name === key);
    if (!p) problems.push(`${name}: ${found.template} has no query parameter \`${key}\``);
    else if (p.schema?.type === 'integer' && !/^-?\d+$/.test(value)) problems.push(`${name}: \`${key}=${value}\` is not an integer`);
  }
  let answer = resolve(doc, found.op.responses?.[String(status)]);
  if (!answer && ANY_ENDPOINT.has(status)) answer = { content: { 'application/json': { schema: { $ref: '#/components/schemas/basic-error' } } } };
  if (!answer) return [...problems, `${name}: ${method} ${found.template} does not document status ${status}`];
  const schema = answer.content?.['application/json']?.schema;
  if (!schema) return problems;
  const ref = schema.$ref ?? null;
  const check = ref ? ajv.getSchema(`rest${ref}`)
    : ajv.compile(JSON.parse(JSON.stringify(toJsonSchema(schema)).replaceAll('"#/components/', '"rest#/components/')));
  if (!check(response)) problems.push(`${name}: the ${status} answer does not validate against ${ref ?? 'its schema'}: ${describe(check.errors)}`);
  return problems;
}

/** The webhooks-description key of an event and action, e.g. `merge-group-destroyed`, `push`. */
export const webhookKey = (event, action) => [event, action].filter(Boolean).join('-').replace(/_/g, '-');

/** Problems of a webhook payload for `event` against GitHub's description of `event` + its `action`. */
export function checkWebhook(event, payload, name) {
  const { doc, ajv } = webhookApi();
  const key = doc.webhooks[webhookKey(event, payload?.action)] ? webhookKey(event, payload?.action) : webhookKey(event);
  const ref = doc.webhooks[key]?.post?.requestBody?.content?.['application/json']?.schema?.$ref;
  if (!ref) return [`${name}: GitHub documents no \`${webhookKey(event, payload?.action)}\` webhook`];
  const check = ajv.getSchema(`hooks${ref}`);
  return check(payload) ? [] : [`${name}: not a valid \`${key}\` payload: ${describe(check.errors)}`];
}
