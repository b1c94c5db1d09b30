// Validates the KEDA objects (keda.sh/v1alpha1) in the YAML files given as
// arguments against KEDA's published schema, as packaged in
// @kubernetes-models/keda (installed by scripts/test.sh into
// target/keda-validate). Prints one line per object; exits 1 if any fails
// or if no KEDA object was found.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.KEDA_VALIDATE_MODULES + "/");
const { parseAllDocuments } = require("yaml");
const models = require("@kubernetes-models/keda/keda.sh/v1alpha1");

let failed = 0;
let seen = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    const obj = doc.toJS();
    if (!obj || !String(obj.apiVersion).startsWith("keda.sh/")) continue;
    seen += 1;
    const Model = models[obj.kind];
    const name = `${obj.kind}/${obj.metadata?.name}`;
    if (obj.apiVersion !== "keda.sh/v1alpha1" || !Model) {
      console.log(`${file}: no published schema for ${obj.apiVersion} ${name}`);
      failed += 1;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`${file}: passed for ${name}`);
    } catch (e) {
      console.log(`${file}: FAILED for ${name}: ${e.message}`);
      failed += 1;
    }
  }
}
if (seen === 0) {
  console.log("no KEDA object in the files given");
  process.exit(1);
}
process.exit(failed ? 1 : 0);
