// Trackside dashboard: the little behaviour htmx does not cover. Live parts use server-sent events.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  document.body.addEventListener("htmx:configRequest", (e) => { e.detail.headers["X-CSRF-Token"] = csrf; });

  // Copy buttons: <button data-copy="element-id">.
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.copy).textContent;
      try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; }
      catch (e) { window.getSelection().selectAllChildren(document.getElementById(button.dataset.copy)); }
    });
  });

  // Live regions: the server sends the region's new HTML as events named data-live-event.
  document.querySelectorAll("[data-live-src]").forEach((region) => {
    const source = new EventSource(region.dataset.liveSrc);
    source.addEventListener(region.dataset.liveEvent, (e) => { region.innerHTML = e.data; htmx.process(region); });
    source.addEventListener("end", () => source.close());
    source.addEventListener("failed", () => source.close());
    window.addEventListener("pagehide", () => source.close());
  });

  // Runtime logs: "Follow live" appends each new line.
  const follow = document.getElementById("follow-logs");
  if (follow) {
    const pre = document.getElementById("runtime-logs");
    let source = null;
    follow.addEventListener("click", () => {
      if (source) { source.close(); source = null; follow.setAttribute("aria-pressed", "false"); follow.textContent = "Follow live"; return; }
      source = new EventSource(follow.dataset.src);
      pre.textContent = "";  // the stream starts with the latest lines itself
      follow.setAttribute("aria-pressed", "true");
      follow.textContent = "Stop following";
      source.addEventListener("line", (e) => {
        pre.append(document.createTextNode((pre.textContent ? "\n" : "") + JSON.parse(e.data)));
        pre.scrollTop = pre.scrollHeight;
      });
      source.addEventListener("failed", (e) => { pre.append("\n[" + JSON.parse(e.data).error + "]"); source.close(); });
      // A stream that ends (a pipeline step's log, once the step is over) must not reconnect and repeat itself.
      source.addEventListener("end", () => { source.close(); source = null; follow.setAttribute("aria-pressed", "false"); follow.textContent = "Follow live"; });
    });
  }

  // Call charts: requests per minute, p50/p99 latency, error rate (uPlot), fed by server-sent events.
  const charts = document.getElementById("calls-charts");
  if (charts) {
    const summary = document.getElementById("calls-summary");
    let source = null;
    let plots = [];
    const specs = [
      ["Requests per minute", [["requests/min", "#1d4e89", "requests_per_minute"]]],
      ["Latency (ms)", [["p50", "#1f7a3f", "p50_ms"], ["p99", "#b42318", "p99_ms"]]],
      ["Error rate (%)", [["errors", "#b42318", "error_rate"]]],
    ];
    function draw(data) {
      const times = data.points.map((p) => p.time);
      const columns = specs.map(([, series]) => [times].concat(series.map(([, , key]) =>
        data.points.map((p) => (p[key] === null ? null : key === "error_rate" ? p[key] * 100 : p[key])))));
      if (plots.length === 0) {
        charts.innerHTML = "";
        // Every figure first, so the grid has its final columns before the charts measure them.
        const figures = specs.map(([title]) => {
          const figure = document.createElement("figure");
          const caption = document.createElement("figcaption");
          caption.textContent = title;
          figure.append(caption);
          charts.append(figure);
          return figure;
        });
        specs.forEach(([, series], i) => {
          const opts = {
            width: Math.max(220, figures[i].clientWidth - 16), height: 180,
            series: [{}].concat(series.map(([label, stroke]) => ({ label, stroke, spanGaps: false, points: { show: true, size: 5 } }))),
            scales: { x: { time: true } },
          };
          plots.push(new uPlot(opts, columns[i], figures[i]));
        });
      } else {
        plots.forEach((plot, i) => plot.setData(columns[i]));
      }
      summary.dataset.total = String(data.total_requests);
      summary.textContent = data.total_requests + " requests and " + data.total_errors + " errors in the last " + data.window + " (from the gateways' counts).";
    }
    function open(window_) {
      if (source) source.close();
      plots.forEach((p) => p.destroy());
      plots = [];
      source = new EventSource(charts.dataset.src + "?window=" + window_);
      source.addEventListener("calls", (e) => draw(JSON.parse(e.data)));
      source.addEventListener("failed", (e) => { summary.textContent = JSON.parse(e.data).error; });
    }
    document.querySelectorAll("[data-window]").forEach((button) => button.addEventListener("click", () => {
      document.querySelectorAll("[data-window]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      open(button.dataset.window);
    }));
    window.addEventListener("pagehide", () => source && source.close());
    open("hour");
  }

  // Permissions graph: click a node (or pick it) to see its grants and only its neighbours.
  const graph = document.getElementById("graph");
  if (graph) {
    const details = document.getElementById("graph-details");
    const pick = document.getElementById("graph-pick");
    const colours = { esc: "#9a6700", job_family: "#1d4e89", user: "#1f7a3f", all: "#5b6675" };
    fetch(graph.dataset.src, { credentials: "same-origin" }).then((r) => r.json()).then((data) => {
      const elements = data.nodes.map((n) => ({ data: { id: n.id, label: n.title, type: n.type, subtitle: n.subtitle } }))
        .concat(data.edges.map((e, i) => ({ data: { id: "edge-" + i, source: e.from_id, target: e.to_id, label: e.scopes.join(", ") } })));
      const cy = cytoscape({
        container: graph, elements, maxZoom: 2,
        layout: { name: data.nodes.length > 150 ? "grid" : "cose", animate: false },
        style: [
          { selector: "node", style: { label: "data(label)", "font-size": 10, "background-color": (n) => colours[n.data("type")] || "#888", width: 18, height: 18 } },
          { selector: "edge", style: { width: 1.5, "curve-style": "bezier", "target-arrow-shape": "triangle", "line-color": "#9aa5b1", "target-arrow-color": "#9aa5b1" } },
          { selector: ".focus", style: { "border-width": 3, "border-color": "#f59e0b" } },
        ],
      });
      data.nodes.forEach((n) => { const o = document.createElement("option"); o.value = n.id; o.textContent = n.type.replace("_", " ") + ": " + n.title; pick.append(o); });
      graph.dataset.nodes = String(cy.nodes().length);
      function showAll() { cy.elements().style("display", "element"); cy.nodes().removeClass("focus"); pick.value = ""; graph.dataset.visible = String(cy.nodes().length); details.innerHTML = "<p>Select a node to see its grants.</p>"; cy.fit(); }
      function focus(node) {
        const keep = node.closedNeighborhood();
        cy.elements().style("display", "none");
        keep.style("display", "element");
        cy.nodes().removeClass("focus"); node.addClass("focus");
        pick.value = node.id();
        graph.dataset.visible = String(keep.nodes().length);
        details.innerHTML = "";
        const h = document.createElement("h2"); h.textContent = node.data("label"); details.append(h);
        const p = document.createElement("p"); p.textContent = node.data("subtitle"); details.append(p);
        const list = document.createElement("ul"); list.id = "graph-edges";
        node.connectedEdges().forEach((e) => {
          const li = document.createElement("li");
          li.textContent = cy.getElementById(e.data("source")).data("label") + " → " + cy.getElementById(e.data("target")).data("label") + ": " + e.data("label");
          list.append(li);
        });
        details.append(list);
        cy.fit(keep, 40);
      }
      cy.on("tap", "node", (e) => focus(e.target));
      pick.addEventListener("change", () => (pick.value ? focus(cy.getElementById(pick.value)) : showAll()));
      document.getElementById("graph-all").addEventListener("click", showAll);
      window.tracksideGraph = cy;
      showAll();
    });
  }
})();
