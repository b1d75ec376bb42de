// Validates rendered Kubernetes manifests (multi-document YAML files, e.g. `kubectl kustomize`
// output) against the Kubernetes API schemas, offline.
//
//   node validate_manifests.mjs FILE...
//
// The schemas are kubernetes-models' (npm, pinned in package.json): one validator per
// apiVersion/kind, generated from the Kubernetes OpenAPI definitions (types, formats such as
// int32/quantity patterns, enums, required fields). Every document must be of a kind the package
// knows; a document of an unknown apiVersion/kind is an error, so a typo in `kind:` cannot slip
// through as "nothing to check". Like the API server's OpenAPI schema, these validators do not
// reject unknown fields: field names that matter are checked by tests/deploy/deploy_test.py.
//
// Prints one line per document ("OK <file> <kind>/<name>" or "INVALID ..." with the schema errors)
// and exits 1 if any document is invalid or unreadable, 0 otherwise.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

async function modelFor(apiVersion, kind) {
  // kubernetes-models lays its classes out as <group>/<version>/<Kind> ("v1/Service",
  // "apps/v1/DaemonSet", "rbac.authorization.k8s.io/v1/Role").
  if (typeof apiVersion !== "string" || typeof kind !== "string" ||
      !/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    return null;
  }
  try {
    const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
    return mod[kind] ?? null;
  } catch {
    return null;
  }
}

let failed = 0;
let checked = 0;
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate_manifests.mjs FILE...");
  process.exit(2);
}
for (const file of files) {
  let docs;
  try {
    docs = parseAllDocuments(readFileSync(file, "utf8"));
  } catch (e) {
    console.log(`INVALID ${file}: cannot read: ${e.message}`);
    failed++;
    continue;
  }
  for (const doc of docs) {
    if (doc.errors.length) {
      console.log(`INVALID ${file}: YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;  // empty document ("---" at the end)
    const what = `${obj.kind ?? "?"}/${obj.metadata?.name ?? "?"}`;
    const Model = await modelFor(obj.apiVersion, obj.kind);
    if (!Model) {
      console.log(`INVALID ${file} ${what}: unknown apiVersion/kind ${obj.apiVersion}/${obj.kind}`);
      failed++;
      continue;
    }
    checked++;
    try {
      new Model(obj).validate();
      console.log(`OK ${file} ${what}`);
    } catch (e) {
      // ValidationError: message lists "data/<path> must ..." for every schema violation.
      console.log(`INVALID ${file} ${what}: ${e.message}`);
      failed++;
    }
  }
}
console.log(`${checked} object(s) checked, ${failed} invalid`);
process.exit(failed ? 1 : 0);
