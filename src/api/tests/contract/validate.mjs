// Contract check for the /v1 API:
//  1. openapi.json is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator);
//  2. every recorded real response has a status the document declares for its
//     operation, and a body that matches the declared schema (Ajv, JSON Schema 2020-12).
// Usage: node validate.mjs <dir with openapi.json and responses.json>
import fs from "node:fs";
import path from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const dir = process.argv[2];
const doc = JSON.parse(fs.readFileSync(path.join(dir, "openapi.json"), "utf8"));
const records = JSON.parse(fs.readFileSync(path.join(dir, "responses.json"), "utf8"));

const validator = new Validator();
const result = await validator.validate(doc);
if (!result.valid) {
  console.error("openapi.json is not a valid OpenAPI document:");
  console.error(JSON.stringify(result.errors, null, 2));
  process.exit(1);
}
console.log(`openapi.json: valid OpenAPI ${doc.openapi}, ${Object.keys(doc.paths).length} paths`);

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(doc, "openapi.json");
const pointer = (parts) =>
  parts.map((p) => encodeURIComponent(String(p).replace(/~/g, "~0").replace(/\//g, "~1"))).join("/");

let failures = 0;
const seen = new Set();
for (const r of records) {
  const op = doc.paths[r.pattern]?.[r.method];
  const where = `${r.method.toUpperCase()} ${r.pattern} -> ${r.status}`;
  if (!op) {
    console.error(`undocumented operation: ${where}`);
    failures++;
    continue;
  }
  const declared = op.responses[String(r.status)];
  if (!declared) {
    console.error(`undocumented status: ${where}`);
    failures++;
    continue;
  }
  seen.add(`${r.method} ${r.pattern} ${r.status}`);
  if (!declared.content) {
    if (r.body !== null && r.body !== undefined && r.body !== "") {
      console.error(`${where}: body where none is declared`);
      failures++;
    }
    continue;
  }
  const ctype = r.contentType.split(";")[0].trim();
  if (!declared.content[ctype]) {
    console.error(`${where}: content type ${ctype} not declared`);
    failures++;
    continue;
  }
  const ref = "openapi.json#/" + pointer(["paths", r.pattern, r.method, "responses", String(r.status), "content", ctype, "schema"]);
  const validate = ajv.getSchema(ref) ?? ajv.compile({ $ref: ref });
  if (!validate(r.body)) {
    console.error(`${where}: body does not match the schema`);
    console.error(JSON.stringify(validate.errors, null, 2).slice(0, 2000));
    console.error(JSON.stringify(r.body).slice(0, 500));
    failures++;
  }
}
console.log(`${records.length} responses checked, ${seen.size} distinct operation/status pairs, ${failures} failures`);
process.exit(failures === 0 ? 0 : 1);
