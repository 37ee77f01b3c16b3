// Renders /openapi.json as plain tables: every path, its parameters and its answers.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function resolve(spec, schema) {
    let seen = 0;
    while (schema && schema.$ref && seen++ < 10) {
      const name = schema.$ref.split("/").pop();
      schema = spec.components.schemas[name];
    }
    return schema || {};
  }

  function describe(spec, schema, depth) {
    schema = resolve(spec, schema);
    if (depth > 3) return schema.type || "object";
    if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
    if (schema.type === "array") return "[" + describe(spec, schema.items || {}, depth + 1) + "]";
    if (schema.type === "object" && schema.properties) {
      const required = new Set(schema.required || []);
      const fields = Object.entries(schema.properties).map(
        ([name, sub]) => name + (required.has(name) ? "" : "?") + ": " + describe(spec, sub, depth + 1)
      );
      if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
        fields.push("*: " + describe(spec, schema.additionalProperties, depth + 1));
      }
      return "{" + fields.join(", ") + "}";
    }
    if (schema.type === "object" && typeof schema.additionalProperties === "object") {
      return "{*: " + describe(spec, schema.additionalProperties, depth + 1) + "}";
    }
    let text = schema.type || "any";
    if (schema.nullable) text += " | null";
    if (schema.minimum !== undefined || schema.maximum !== undefined) {
      text += " (" + (schema.minimum ?? "") + "–" + (schema.maximum ?? "") + ")";
    }
    return text;
  }

  function table(headers, rows) {
    const t = el("table");
    const head = el("tr");
    for (const h of headers) head.appendChild(el("th", h));
    t.appendChild(el("thead")).appendChild(head);
    const body = t.appendChild(el("tbody"));
    for (const row of rows) {
      const tr = el("tr");
      for (const value of row) {
        tr.appendChild(el("td", value));
      }
      body.appendChild(tr);
    }
    return t;
  }

  function render(spec) {
    $("intro").textContent =
      spec.info.title + " " + spec.info.version + " (OpenAPI " + spec.openapi + "). " +
      (spec.info.description || "");
    const schemes = (spec.components && spec.components.securitySchemes) || {};
    const box = $("paths");
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const section = el("section", undefined, "panel");
        section.appendChild(el("h2", method.toUpperCase() + " " + path));
        section.appendChild(el("p", op.summary || "", "hint"));
        if (op.security && op.security.length) {
          const names = op.security.flatMap((s) => Object.keys(s));
          const texts = names.map((n) => (schemes[n] && schemes[n].description) || n);
          section.appendChild(el("p", "Authorization: Bearer token, one of: " + texts.join("; "), "warn"));
        }
        const params = (op.parameters || []).map((p) => [
          p.name,
          p.in + (p.required ? ", required" : ""),
          describe(spec, p.schema || {}, 0) +
            (p.schema && p.schema.default !== undefined ? " (default " + p.schema.default + ")" : ""),
          p.description || "",
        ]);
        if (params.length) {
          section.appendChild(table(["parameter", "in", "schema", "meaning"], params));
        }
        const answers = Object.entries(op.responses || {}).map(([status, r]) => {
          const media = Object.entries(r.content || {});
          const shape = media.length
            ? media.map(([type, m]) => type + " " + describe(spec, m.schema || {}, 0)).join("; ")
            : "";
          const headers = Object.keys(r.headers || {}).join(", ");
          return [status, r.description || "", shape, headers];
        });
        section.appendChild(table(["status", "meaning", "body", "headers"], answers));
        box.appendChild(section);
      }
    }
  }

  fetch("/openapi.json")
    .then((resp) => {
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      return resp.json();
    })
    .then(render)
    .catch((e) => {
      $("intro").textContent = "Could not load /openapi.json: " + e.message;
    });
})();
