"""The API's reference page: one self-contained HTML page made from its OpenAPI document.

FastAPI's Swagger UI and ReDoc pages load their scripts from a CDN, which an engine
offline cannot reach, so the engine serves neither: ``reference_page`` writes every
operation (its parameters, request body and answers) and every schema as plain HTML,
with its own small style sheet and no script, at request time from the same document
``/openapi.json`` serves. Every text from the document is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Any

_METHODS = ("get", "post", "put", "patch", "delete")
_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1d2330}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ccd;padding-bottom:.2rem;margin-top:2.5rem}
h3{margin:2rem 0 .3rem;font-family:ui-monospace,monospace;font-size:1rem}
code,.path{font-family:ui-monospace,monospace}
.verb{display:inline-block;min-width:4.2rem;font-weight:bold}
.get{color:#1b6e2b}.post{color:#234fa8}.patch{color:#8a5a00}.delete{color:#a42323}
.put{color:#6b2fa5}
table{border-collapse:collapse;margin:.4rem 0 1rem}
td,th{border:1px solid #dde;padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f4f8}.muted{color:#667}ul.toc{columns:2;padding-left:1.2rem}
"""


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(schema: Mapping[str, Any]) -> str:
    """A schema in a few words of HTML: a type, a link to a named schema, a choice."""
    if "$ref" in schema:
        name = _ref_name(str(schema["$ref"]))
        return f'<a href="#schema-{_anchor(name)}">{escape(name)}</a>'
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(type_of(part) for part in schema[key])
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{escape(str(v))}</code>" for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        return f"object of {type_of(schema['additionalProperties'])}"
    if kind == "null":
        return "null"
    if isinstance(kind, str):
        fmt = schema.get("format")
        return escape(f"{kind} ({fmt})" if fmt else kind)
    return "any"


def _bounds(schema: Mapping[str, Any]) -> str:
    """The schema's bounds and default, as a short note."""
    notes = []
    for key, label in (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
    ):
        if key in schema:
            notes.append(f"{label} {schema[key]}")
    if "default" in schema:
        notes.append(f"default {schema['default']!r}")
    return escape(", ".join(notes))


def _parameters(operation: Mapping[str, Any]) -> list[str]:
    params = operation.get("parameters") or []
    if not params:
        return []
    rows = [
        f"<tr><td><code>{escape(str(p.get('name')))}</code></td><td>{escape(str(p.get('in')))}"
        f"</td><td>{type_of(p.get('schema', {}))}</td><td>{'yes' if p.get('required') else 'no'}"
        f"</td><td>{_bounds(p.get('schema', {}))}</td></tr>"
        for p in params
    ]
    head = "<tr><th>parameter</th><th>in</th><th>type</th><th>required</th><th>bounds</th></tr>"
    return ["<table>", head, *rows, "</table>"]


def _content(content: Mapping[str, Any]) -> str:
    return "; ".join(
        f"<code>{escape(kind)}</code>: {type_of(media.get('schema', {}))}"
        for kind, media in content.items()
    )


def _body(operation: Mapping[str, Any]) -> list[str]:
    body = operation.get("requestBody")
    if not body:
        return []
    required = " (required)" if body.get("required") else ""
    return [f"<p>Request body{required}: {_content(body.get('content', {}))}</p>"]


def _answers(operation: Mapping[str, Any]) -> list[str]:
    rows = []
    for status, answer in operation.get("responses", {}).items():
        what = escape(str(answer.get("description", "")))
        content = _content(answer.get("content", {}))
        rows.append(f"<tr><td>{escape(str(status))}</td><td>{what}</td><td>{content}</td></tr>")
    head = "<tr><th>status</th><th>meaning</th><th>body</th></tr>"
    return ["<table>", head, *rows, "</table>"]


def _operation(method: str, path: str, operation: Mapping[str, Any]) -> list[str]:
    anchor = _anchor(f"{method} {path}")
    lines = [
        f'<h3 id="{anchor}"><span class="verb {method}">{method.upper()}</span>'
        f'<span class="path">{escape(path)}</span></h3>'
    ]
    summary = operation.get("summary")
    if summary:
        lines.append(f"<p><b>{escape(str(summary))}</b></p>")
    description = operation.get("description")
    if description:
        lines.append(f"<p>{escape(str(description))}</p>")
    return lines + _parameters(operation) + _body(operation) + _answers(operation)


def _schema(name: str, schema: Mapping[str, Any]) -> list[str]:
    lines = [f'<h3 id="schema-{_anchor(name)}">{escape(name)}</h3>']
    if schema.get("description"):
        lines.append(f"<p>{escape(str(schema['description']))}</p>")
    properties: Mapping[str, Any] = schema.get("properties") or {}
    if not properties:
        lines.append(f"<p>{type_of(schema)}</p>")
        return lines
    required = set(schema.get("required") or ())
    lines += ["<table>", "<tr><th>field</th><th>type</th><th>required</th><th>bounds</th></tr>"]
    for field, spec in properties.items():
        lines.append(
            f"<tr><td><code>{escape(field)}</code></td><td>{type_of(spec)}</td>"
            f"<td>{'yes' if field in required else 'no'}</td><td>{_bounds(spec)}</td></tr>"
        )
    return [*lines, "</table>"]


def reference_page(document: Mapping[str, Any]) -> str:
    """The whole reference page of ``document`` (an OpenAPI 3 document), as HTML."""
    info = document.get("info", {})
    title = escape(f"{info.get('title', 'API')} {info.get('version', '')}".strip())
    operations = [
        (method, path, op)
        for path, ops in document.get("paths", {}).items()
        for method, op in ops.items()
        if method in _METHODS
    ]
    toc = [
        f'<li><a href="#{_anchor(f"{m} {p}")}"><span class="verb {m}">{m.upper()}</span>'
        f'<span class="path">{escape(p)}</span></a></li>'
        for m, p, _ in operations
    ]
    body = [
        f"<h1>{title}</h1>",
        '<p class="muted">The engine\'s HTTP API on its Unix socket, for root and members of '
        "group odin (the kernel tells the engine who calls). Every error answers with the "
        'body <code>{"error": {"type": ..., "message": ...}}</code> '
        '(<a href="#schema-errorbody">ErrorBody</a>). The same document, for programs: '
        "<code>GET /openapi.json</code>.</p>",
        "<h2>Operations</h2>",
        '<ul class="toc">',
        *toc,
        "</ul>",
    ]
    for method, path, op in operations:
        body += _operation(method, path, op)
    body.append("<h2>Schemas</h2>")
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        body += _schema(name, schema)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width"><style>{_STYLE}</style></head>'
        f"<body>{''.join(body)}</body></html>"
    )
