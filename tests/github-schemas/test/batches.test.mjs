// Issue 16, point 5: how does GitHub represent a batch (a merge group of several pull
// requests)? mainline assumes (crates/mainline-github/src/api/queue.rs) that the entries of
// one group share their `headCommit`, and names the group `pr-<N>` after its last entry,
// which is the `pr-<N>` of the group's `gh-readonly-queue/<branch>/pr-<N>-<sha>` head ref.
// These tests pin what the schemas say, so that a schema that adds a group identity makes
// them fail and the assumption is revisited.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { githubSchema, webhookApi } from '../lib/github.mjs';

const examplesFile = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
  '../node_modules/@octokit/webhooks-examples/api.github.com/index.json');

test('a merge queue entry names no group: only its head and base commits can tie entries together', () => {
  const entry = githubSchema().getType('MergeQueueEntry').getFields();
  assert.deepEqual(Object.keys(entry).sort(), [
    'baseCommit', 'enqueuedAt', 'enqueuer', 'estimatedTimeToMerge', 'headCommit', 'id', 'jump',
    'mergeQueue', 'position', 'pullRequest', 'solo', 'state',
  ], 'MergeQueueEntry changed: revisit the batching assumption in src/api/queue.rs');
  assert.equal(String(entry.headCommit.type), 'Commit', 'headCommit is nullable: entries without a group yet');
  assert.equal(String(entry.pullRequest.type), 'PullRequest');
  // Batches exist: the queue may merge several entries at once.
  const config = githubSchema().getType('MergeQueueConfiguration').getFields();
  assert.ok(config.maximumEntriesToMerge && config.minimumEntriesToMerge);
});

test('a merge_group webhook carries one head and one ref, and no list of pull requests', () => {
  const group = webhookApi().doc.components.schemas['merge-group'];
  assert.deepEqual(Object.keys(group.properties).sort(), ['base_ref', 'base_sha', 'head_commit', 'head_ref', 'head_sha']);
});

test('every merge_group example names its group by a gh-readonly-queue ref on its base branch', () => {
  const examples = JSON.parse(readFileSync(examplesFile, 'utf8')).find((e) => e.name === 'merge_group').examples;
  assert.ok(examples.length >= 1);
  for (const ex of examples) {
    const m = /^refs\/heads\/gh-readonly-queue\/(.+)\/pr-(\d+)-([0-9a-f]{40})$/.exec(ex.merge_group.head_ref);
    assert.ok(m, `unexpected head_ref ${ex.merge_group.head_ref}`);
    assert.equal(`refs/heads/${m[1]}`, ex.merge_group.base_ref);
  }
});
