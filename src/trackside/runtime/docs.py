"""OpenAPI document (built once, after the job loads) and a self-contained docs page.

The page has no third-party assets (it must work on an air-gapped network): it fetches
`openapi.json` relative to itself, so it works at the root and under `/pub/job/{name}/{version}/`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any


def parameters_of(fn: Callable[..., Any]) -> list[dict[str, Any]]:
    """`[{name, type, default?}]` from a callable's signature (Racetrack's `/api/v1/parameters`)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    result: list[dict[str, Any]] = []
    for param in sig.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        entry: dict[str, Any] = {"name": param.name, "type": type_name(param.annotation)}
        if param.default is not param.empty:
            entry["default"] = param.default
        result.append(entry)
    return result


def type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "any"
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


_JSON_TYPES = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
    "tuple": "array",
    "set": "array",
}


def _schema_for(annotation: Any) -> dict[str, Any]:
    name = type_name(annotation)
    base = name.split("[", 1)[0]
    kind = _JSON_TYPES.get(base)
    return {"type": kind} if kind else {}


def _body_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        params = []  # type: ignore[assignment]
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        schema = _schema_for(param.annotation)
        if param.default is not param.empty:
            try:
                json.dumps(param.default)
                schema["default"] = param.default
            except (TypeError, ValueError):
                pass
        else:
            required.append(param.name)
        props[param.name] = schema
    body: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        body["required"] = required
    return body


def _operation(fn: Callable[..., Any], summary: str, example: Any, method: str, tag: str) -> dict[str, Any]:
    doc = inspect.getdoc(fn) or ""
    op: dict[str, Any] = {
        "summary": summary,
        "description": doc,
        "tags": [tag],
        "responses": {
            "200": {"description": "the result, as JSON", "content": {"application/json": {"schema": {}}}},
            "400": {"description": "invalid input (not a JSON object, or wrong arguments)"},
            "500": {"description": "the job raised an exception: `{error, type}`"},
        },
    }
    if method == "post":
        media: dict[str, Any] = {"schema": _body_schema(fn)}
        if example is not None:
            media["example"] = example
        op["requestBody"] = {"required": True, "content": {"application/json": media}}
    else:
        op["parameters"] = [
            {
                "name": p["name"],
                "in": "query",
                "required": "default" not in p,
                "schema": _schema_for(p["type"]),
            }
            for p in parameters_of(fn)
        ]
    return op


def build_openapi(
    title: str,
    version: str,
    job_doc: str,
    perform: Callable[..., Any] | None,
    examples: dict[str, Any],
    aux: list[tuple[str, str, Callable[..., Any]]],
    static_routes: list[str],
    has_webview: bool,
) -> dict[str, Any]:
    """The OpenAPI 3 document for a loaded job; `aux` holds (path under /api/v1, method, handler)."""
    paths: dict[str, Any] = {}
    if perform is not None:  # optional: a job may offer only auxiliary endpoints or a webview
        paths["/api/v1/perform"] = {
            "post": _operation(perform, "Call the job (perform)", examples.get("/perform"), "post", "job")
        }
        paths["/api/v1/parameters"] = {
            "get": {
                "summary": "perform's parameters",
                "tags": ["job"],
                "responses": {"200": {"description": "[{name, type, default?}]"}},
            }
        }
    for path, method, fn in aux:
        m = method.lower()
        paths.setdefault("/api/v1" + path, {})[m] = _operation(
            fn, f"Auxiliary endpoint {path}", examples.get(path), m, "auxiliary"
        )
    for route in static_routes:
        paths.setdefault(route, {})["get"] = {
            "summary": "static file",
            "tags": ["static"],
            "responses": {"200": {"description": "the file"}},
        }
    if has_webview:
        paths["/api/v1/webview/"] = {
            "get": {
                "summary": "the job's web view",
                "tags": ["webview"],
                "responses": {"200": {"description": "HTML"}},
            }
        }
    for probe, desc in (("/live", "liveness"), ("/ready", "readiness"), ("/health", "health summary")):
        paths[probe] = {"get": {"summary": desc, "tags": ["probes"], "responses": {"200": {"description": "ok"}}}}
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics",
            "tags": ["probes"],
            "responses": {"200": {"description": "text exposition format"}},
        }
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version or "0.0.0", "description": job_doc},
        "paths": paths,
        "components": {
            "securitySchemes": {"RacetrackAuth": {"type": "apiKey", "in": "header", "name": "X-Racetrack-Auth"}}
        },
        "security": [{"RacetrackAuth": []}],
    }


def examples_of(job: Any) -> dict[str, Any]:
    """`docs_input_examples()` (endpoint -> example), with `docs_input_example()` for '/perform'."""
    examples: dict[str, Any] = {}
    many: Callable[[], Any] | None = getattr(job, "docs_input_examples", None)
    if callable(many):
        result = many()
        if not isinstance(result, dict):
            raise TypeError(
                f"docs_input_examples() must return a dict {{endpoint: example}}, got {type(result).__name__}"
            )
        examples.update(result)
    one = getattr(job, "docs_input_example", None)
    if callable(one) and "/perform" not in examples:
        examples["/perform"] = one()
    return examples


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Job API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232a}
header{background:#1d3557;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;opacity:.8;white-space:pre-wrap}
main{max-width:980px;margin:0 auto;padding:16px}
.op{background:#fff;border:1px solid #d8dde3;border-radius:6px;margin:10px 0}
.op>summary{cursor:pointer;padding:10px 12px;display:flex;gap:10px;align-items:center}
.m{font-weight:700;font-size:12px;padding:3px 8px;border-radius:4px;color:#fff;min-width:44px}
.m{text-align:center}
.m.post{background:#2a9d8f}.m.get{background:#457b9d}
.path{font-family:monospace;font-size:14px}.sum{color:#5c6670;font-size:13px}
.body{padding:0 12px 12px}pre.doc{white-space:pre-wrap;background:#f1f3f5;padding:8px;border-radius:4px}
textarea,input{width:100%;box-sizing:border-box;font-family:monospace;font-size:13px}
textarea{min-height:90px}button{margin-top:6px;padding:6px 14px;cursor:pointer}
pre.out{background:#0f172a;color:#e2e8f0;padding:8px;border-radius:4px;white-space:pre-wrap;min-height:20px}
.auth{margin:8px 0}
</style></head><body>
<header><h1 id="title">Job API</h1><p id="desc"></p></header>
<main>
<div class="auth"><label>X-Racetrack-Auth token (optional; the gateway cookie is used otherwise)
<input id="token" autocomplete="off"></label></div>
<div id="ops">Loading openapi.json&hellip;</div>
</main>
<script>
"use strict";
function el(tag, attrs, text){const e=document.createElement(tag);
  for(const k in (attrs||{})) e.setAttribute(k, attrs[k]); if(text!==undefined) e.textContent=text; return e;}
async function tryIt(method, path, input, out){
  const headers={};
  const token=document.getElementById("token").value.trim();
  if(token) headers["X-Racetrack-Auth"]=token;
  let url="."+path, opts={method:method.toUpperCase(), headers:headers};
  if(opts.method==="POST"){headers["Content-Type"]="application/json"; opts.body=input.value;}
  else if(input.value.trim()) url+="?"+input.value.trim();
  out.textContent="...";
  const t0=performance.now();
  try{
    const r=await fetch(url, opts); const text=await r.text(); let shown=text;
    try{shown=JSON.stringify(JSON.parse(text), null, 2);}catch(e){}
    out.textContent="HTTP "+r.status+" ("+Math.round(performance.now()-t0)+" ms)\\n"+shown;
  }catch(e){out.textContent="request failed: "+e;}
}
async function main(){
  const ops=document.getElementById("ops");
  let spec;
  try{const r=await fetch("openapi.json"); if(!r.ok) throw new Error("HTTP "+r.status+": "+await r.text());
      spec=await r.json();}
  catch(e){ops.textContent="Could not load openapi.json: "+e; return;}
  document.getElementById("title").textContent=spec.info.title+" "+spec.info.version;
  document.getElementById("desc").textContent=spec.info.description||"";
  document.title=spec.info.title;
  ops.textContent="";
  for(const path of Object.keys(spec.paths)){
    for(const method of Object.keys(spec.paths[path])){
      const op=spec.paths[path][method];
      const d=el("details",{class:"op"}); if(path==="/api/v1/perform") d.open=true;
      const s=el("summary"); s.appendChild(el("span",{class:"m "+method},method.toUpperCase()));
      s.appendChild(el("span",{class:"path"},path)); s.appendChild(el("span",{class:"sum"},op.summary||""));
      d.appendChild(s);
      const b=el("div",{class:"body"});
      if(op.description) b.appendChild(el("pre",{class:"doc"},op.description));
      let input;
      if(method==="post"){
        const media=((op.requestBody||{}).content||{})["application/json"]||{};
        input=el("textarea"); input.value=JSON.stringify(media.example===undefined?{}:media.example,null,2);
        b.appendChild(el("div",{},"Request body (JSON):"));
      }else{
        input=el("input",{placeholder:"query string, e.g. a=1&b=2"});
      }
      b.appendChild(input);
      const btn=el("button",{type:"button"},"Try it"); const out=el("pre",{class:"out"});
      btn.addEventListener("click",()=>tryIt(method,path,input,out));
      b.appendChild(btn); b.appendChild(out); d.appendChild(b); ops.appendChild(d);
    }
  }
}
main();
</script></body></html>
"""
