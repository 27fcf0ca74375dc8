// The API documentation page: reads the OpenAPI schema and lists every operation with a form to
// try it. Everything from the schema is written as text (textContent), never as HTML.
"use strict";

(function () {
  const body = document.body;
  const METHODS = ["get", "post", "put", "patch", "delete"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function resolve(schema, spec) {
    let seen = 0;
    while (schema && schema.$ref && seen++ < 20) {
      const path = schema.$ref.replace(/^#\//, "").split("/");
      schema = path.reduce((node, key) => (node ? node[key] : undefined), spec);
    }
    return schema || {};
  }

  // A plausible example value for a schema, to prefill request bodies and show response shapes.
  function example(schema, spec, depth) {
    schema = resolve(schema, spec);
    if (depth > 6) return null;
    if (schema.example !== undefined) return schema.example;
    const variants = schema.oneOf || schema.anyOf || schema.allOf;
    if (variants && variants.length) return example(variants[0], spec, depth + 1);
    if (schema.enum && schema.enum.length) return schema.enum.find((v) => v !== null && v !== "") ?? schema.enum[0];
    switch (schema.type) {
      case "object": {
        const out = {};
        for (const [name, prop] of Object.entries(schema.properties || {})) {
          if (!resolve(prop, spec).readOnly) out[name] = example(prop, spec, depth + 1);
        }
        if (!schema.properties && schema.additionalProperties) out.key = example(schema.additionalProperties, spec, depth + 1);
        return out;
      }
      case "array":
        return [example(schema.items || {}, spec, depth + 1)];
      case "integer":
      case "number":
        return schema.minimum ?? 1;
      case "boolean":
        return false;
      case "string":
        if (schema.format === "uuid") return "00000000-0000-4000-8000-000000000000";
        if (schema.format === "date-time") return new Date().toISOString();
        if (schema.format === "email") return "reporter@example.org";
        if (schema.format === "uri") return "https://example.org/";
        return "string";
      default:
        return schema.nullable ? null : {};
    }
  }

  function jsonBodySchema(content) {
    const media = content && (content["application/json"] || Object.values(content)[0]);
    return media ? media.schema : null;
  }

  function parameterRows(operation, spec) {
    const rows = [];
    for (const raw of operation.parameters || []) {
      const param = resolve(raw, spec);
      const input = el("input", { class: "mono", "data-in": param.in, "data-name": param.name, spellcheck: "false" });
      const schema = resolve(param.schema || {}, spec);
      if (schema.enum) input.setAttribute("placeholder", schema.enum.filter((v) => v !== "").join(" | "));
      rows.push(
        el("tr", {},
          el("td", {}, el("code", { text: param.name }), param.required ? el("span", { class: "muted", text: " required" }) : null),
          el("td", { class: "muted", text: param.in }),
          el("td", {}, el("div", { text: param.description || "" }), input)),
      );
    }
    return rows;
  }

  function responseList(operation, spec) {
    const list = el("table", {});
    for (const [code, raw] of Object.entries(operation.responses || {})) {
      const response = resolve(raw, spec);
      const schema = jsonBodySchema(response.content);
      const cell = el("td", {}, el("div", { text: response.description || "" }));
      if (schema) {
        const shape = el("details", {}, el("summary", { text: "example" }),
          el("pre", { text: JSON.stringify(example(schema, spec, 0), null, 2) }));
        cell.append(shape);
      }
      list.append(el("tr", {}, el("td", { class: "status", text: code }), cell));
    }
    return list;
  }

  async function send(form, method, path) {
    const output = form.querySelector("output");
    output.textContent = "Sending…";
    let url = path;
    const query = new URLSearchParams();
    const headers = { Accept: "application/json" };
    for (const input of form.querySelectorAll("input[data-in]")) {
      const value = input.value.trim();
      if (!value) continue;
      const where = input.dataset.in;
      if (where === "path") url = url.replace(`{${input.dataset.name}}`, encodeURIComponent(value));
      else if (where === "query") query.append(input.dataset.name, value);
      else if (where === "header") headers[input.dataset.name] = value;
    }
    if ([...query].length) url += `?${query}`;
    const key = document.getElementById("api-key").value.trim();
    if (key) headers.Authorization = `Bearer ${key}`;
    const init = { method: method.toUpperCase(), headers, credentials: key ? "omit" : "same-origin" };
    const textarea = form.querySelector("textarea");
    if (textarea) {
      headers["Content-Type"] = "application/json";
      init.body = textarea.value;
      if (!key) headers["X-CSRFToken"] = body.dataset.csrfToken;
    }
    try {
      const started = performance.now();
      const response = await fetch(url, init);
      const elapsed = Math.round(performance.now() - started);
      let text = await response.text();
      try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON: show as is */ }
      const shown = [...response.headers].filter(([name]) => /^(etag|x-blocklist-cursor|retry-after|idempotent-replayed|content-type)$/i.test(name));
      output.replaceChildren(
        el("div", {},
          el("span", { class: `status ${response.ok ? "ok" : "bad"}`, text: `${response.status} ${response.statusText}` }),
          el("span", { class: "muted", text: `  ${elapsed} ms  ${method.toUpperCase()} ${url}` })),
        el("pre", { text: shown.map(([n, v]) => `${n}: ${v}`).join("\n") }),
        el("pre", { text: text.length > 200000 ? `${text.slice(0, 200000)}\n… (cut)` : text }),
      );
    } catch (error) {
      output.textContent = `The request failed: ${error}`;
    }
  }

  function operationBlock(spec, path, method, operation) {
    const form = el("form", {});
    const params = parameterRows(operation, spec);
    if (params.length) {
      form.append(el("h3", { text: "Parameters" }), el("table", {}, ...params));
    }
    const requestSchema = operation.requestBody && jsonBodySchema(operation.requestBody.content);
    if (requestSchema) {
      const textarea = el("textarea", { spellcheck: "false" });
      textarea.value = JSON.stringify(example(requestSchema, spec, 0), null, 2);
      form.append(el("h3", { text: "JSON body" }), textarea);
    }
    form.append(el("p", {}, el("button", { type: "submit", text: "Send" })), el("output", {}));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(form, method, path);
    });
    return el("details", { class: "op", id: operation.operationId || `${method}-${path}` },
      el("summary", {},
        el("span", { class: `method ${method}`, text: method.toUpperCase() }),
        el("span", { class: "path", text: path }),
        el("span", { class: "muted", text: operation.summary || "" })),
      el("div", {},
        el("p", { text: operation.description || "" }),
        form,
        el("h3", { text: "Responses" }),
        responseList(operation, spec)));
  }

  async function main() {
    const container = document.getElementById("operations");
    let spec;
    try {
      const response = await fetch(body.dataset.schemaUrl, { headers: { Accept: "application/json" } });
      spec = await response.json();
    } catch (error) {
      container.textContent = `Could not load the schema: ${error}`;
      return;
    }
    document.getElementById("description").textContent = (spec.info && spec.info.description) || "";
    const byTag = new Map();
    for (const [path, item] of Object.entries(spec.paths || {})) {
      for (const method of METHODS) {
        const operation = item[method];
        if (!operation) continue;
        const tag = (operation.tags && operation.tags[0]) || "other";
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push(operationBlock(spec, path, method, operation));
      }
    }
    container.replaceChildren();
    for (const [tag, blocks] of byTag) container.append(el("h2", { text: tag }), ...blocks);
  }

  document.getElementById("key-form").addEventListener("submit", (event) => event.preventDefault());
  main();
})();
