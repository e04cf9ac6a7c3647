// The lineage page: draws the asset graph with dagre (inlined above), collapses sites into
// one box each (and, when there are too many sites for the screen, OOI arrays into one box
// each), filters by search text and status, shows an asset's details on click.
// `data-ready` on <body> marks a finished render (the tests wait for it).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var byKey = {};
  data.nodes.forEach(function (n) { byKey[n.key] = n; });
  var rank = {};
  data.order.forEach(function (s, i) { rank[s] = i; });
  var arrays = data.arrays || {};  // site -> its array, when the page opens by array
  var collapsed = {}, folded = {};  // sites shown as one box; arrays shown as one box
  function collapseAll(byArray) {
    collapsed = {};
    folded = {};
    data.nodes.forEach(function (n) {
      collapsed[n.group] = true;
      if (byArray && arrays[n.group]) folded[arrays[n.group]] = true;
    });
  }
  if (data.collapse) collapseAll(true);
  var rows = {};
  document.querySelectorAll("#status tbody tr").forEach(function (tr) {
    rows[tr.dataset.key] = tr;
  });
  var SVG = "http://www.w3.org/2000/svg";
  var FONT = "12px monospace";
  var BOX_H = 22, PAD = 8;
  var measure = document.createElement("canvas").getContext("2d");
  measure.font = FONT;

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(e);
    return e;
  }

  function wanted() {
    var text = document.getElementById("search").value.trim().toLowerCase();
    var on = {};
    document.querySelectorAll(".status-filter").forEach(function (c) {
      if (c.checked) on[c.value] = true;
    });
    return { text: text, on: on };
  }

  // What is drawn: assets passing the filters; those of a folded array or a collapsed site
  // (when no search is typed) become one box per array or site, coloured by its worst status.
  function view() {
    var w = wanted();
    var shown = {}, boxes = {};
    function gather(id, fields, n) {
      var b = boxes[id] || (boxes[id] = Object.assign({ id: id, count: 0, sites: {},
                                                        status: n.status, site: true },
                                                      fields));
      b.count += 1;
      b.sites[n.group] = true;
      if (rank[n.status] < rank[b.status]) b.status = n.status;
    }
    data.nodes.forEach(function (n) {
      if (!w.on[n.status]) return;
      if (w.text && n.key.toLowerCase().indexOf(w.text) < 0) return;
      var id = n.key, a = arrays[n.group];
      if (!w.text && a && folded[a]) {
        id = "array:" + a;
        gather(id, { array: a }, n);
      } else if (!w.text && collapsed[n.group]) {
        id = "site:" + n.group;
        gather(id, { group: n.group }, n);
      } else {
        boxes[id] = { id: id, key: n.key, status: n.status, site: false };
      }
      shown[n.key] = id;
    });
    var seen = {}, edges = [];
    data.edges.forEach(function (e) {
      var u = shown[e[0]], v = shown[e[1]];
      if (u === undefined || v === undefined || u === v) return;
      if (seen[u + "\u0000" + v]) return;
      seen[u + "\u0000" + v] = true;
      edges.push([u, v]);
    });
    Object.keys(boxes).forEach(function (id) {
      var b = boxes[id];
      if (b.array) {
        var name = data.array_names[b.array] || "array";
        b.label = b.array + " " + name + " (" + Object.keys(b.sites).length + " sites, "
          + b.count + " assets)";
      } else {
        b.label = b.site ? b.group + " (" + b.count + " assets)" : b.key;
      }
      b.width = Math.ceil(measure.measureText(b.label).width) + 2 * PAD;
    });
    return { boxes: boxes, edges: edges, assets: Object.keys(shown).length };
  }

  function draw() {
    var v = view();
    var g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "LR", nodesep: 6, ranksep: 48, marginx: 10, marginy: 10 });
    g.setDefaultEdgeLabel(function () { return {}; });
    Object.keys(v.boxes).forEach(function (id) {
      g.setNode(id, { width: v.boxes[id].width, height: BOX_H });
    });
    v.edges.forEach(function (e) { g.setEdge(e[0], e[1]); });
    dagre.layout(g);
    var size = g.graph();
    var holder = document.getElementById("graph");
    holder.textContent = "";
    var svg = el("svg", { id: "lineage", width: Math.ceil(size.width || 10),
                          height: Math.ceil(size.height || 10), role: "img",
                          "aria-label": "asset lineage" }, holder);
    var defs = el("defs", {}, svg);
    var marker = el("marker", { id: "arrow", viewBox: "0 0 8 8", refX: 8, refY: 4,
                                markerWidth: 7, markerHeight: 7, orient: "auto" }, defs);
    el("path", { d: "M0,0 L8,4 L0,8 z", fill: "#9e9e9e" }, marker);
    g.edges().forEach(function (e) {
      var pts = g.edge(e).points;
      var d = pts.map(function (p, i) { return (i ? "L" : "M") + p.x + "," + p.y; }).join(" ");
      var path = el("path", { d: d, fill: "none", stroke: "#9e9e9e", "stroke-width": 1,
                              "marker-end": "url(#arrow)", "class": "edge" }, svg);
      path.dataset.from = e.v;
      path.dataset.to = e.w;
    });
    var text = wanted().text;
    g.nodes().forEach(function (id) {
      var b = v.boxes[id], n = g.node(id);
      var kind = b.array ? "group array " : b.site ? "group " : "node ";
      var grp = el("g", { "class": kind + b.status }, svg);
      if (b.array) grp.dataset.array = b.array;
      else if (b.site) grp.dataset.group = b.group;
      else grp.dataset.key = b.key;
      if (text && !b.site) grp.classList.add("hit");
      el("title", {}, grp).textContent = b.label + ": " + b.status;
      el("rect", { x: n.x - n.width / 2, y: n.y - BOX_H / 2, width: n.width, height: BOX_H,
                   rx: 4, fill: data.colors[b.status] }, grp);
      var t = el("text", { x: n.x - n.width / 2 + PAD, y: n.y + 4, fill: "#fff",
                           "font-size": 12, "font-family": "monospace" }, grp);
      t.textContent = b.label;
      grp.addEventListener("click", function () {
        if (b.array) folded[b.array] = false;  // its sites stay collapsed
        else if (b.site) collapsed[b.group] = false;
        else return details(b.key);
        draw();
      });
    });
    document.getElementById("shown").textContent =
      v.assets + " of " + data.nodes.length + " assets shown in " + g.nodeCount() + " boxes";
    return g.nodeCount();
  }

  function details(key) {
    var n = byKey[key], box = document.getElementById("details");
    box.textContent = "";
    var h = document.createElement("h3");
    h.textContent = key;
    h.style.wordBreak = "break-all";
    box.appendChild(h);
    var dl = document.createElement("dl");
    var info = Object.assign({ status: n.status, site: n.group }, n.details || {});
    Object.keys(info).forEach(function (k) {
      var dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k;
      var val = info[k];
      dd.textContent = Array.isArray(val) ? val.join("; ") : String(val);
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
    box.appendChild(dl);
    Object.values(rows).forEach(function (tr) { tr.classList.remove("selected"); });
    var tr = rows[key];
    if (tr) tr.classList.add("selected");
  }

  document.getElementById("search").addEventListener("input", draw);
  document.querySelectorAll(".status-filter").forEach(function (c) {
    c.addEventListener("change", draw);
  });
  document.getElementById("expand").addEventListener("click", function () {
    collapsed = {};
    folded = {};
    draw();
  });
  document.getElementById("collapse").addEventListener("click", function () {
    collapseAll(false);
    draw();
  });
  var byArray = document.getElementById("collapse-arrays");
  if (byArray) {
    byArray.addEventListener("click", function () {
      collapseAll(true);
      draw();
    });
  }
  var boxes = draw();
  document.body.dataset.ready = "true";
  console.info("data-vent lineage ready: " + boxes + " nodes, "
               + Object.keys(rows).length + " rows, " + data.nodes.length + " statuses");
})();
