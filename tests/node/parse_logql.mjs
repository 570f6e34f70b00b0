// Parse LogQL queries with Grafana's own grammar (@grafana/lezer-logql) and report errors.
// stdin: a JSON array of query strings. stdout: a JSON array, one entry per query:
// {"ok": bool, "errors": [{"from": n, "to": n, "near": "..."}]}.
// Lezer recovers from errors by inserting error nodes (type.isError), so a query is valid only
// when its tree has none.
import { parser } from "@grafana/lezer-logql";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const queries = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const results = queries.map((query) => {
  const errors = [];
  parser.parse(query).iterate({
    enter(node) {
      if (node.type.isError) {
        errors.push({ from: node.from, to: node.to, near: query.slice(Math.max(0, node.from - 20), node.to + 20) });
      }
    },
  });
  return { ok: errors.length === 0, errors };
});
process.stdout.write(JSON.stringify(results));
