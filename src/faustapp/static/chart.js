// One key's field over time with uPlot: final results (history, then live) as points, x = the
// window's end, deduplicated by window so a result seen twice is drawn once.
(function () {
  "use strict";

  const MAX_POINTS = 1000;

  class KeyChart {
    constructor(box) {
      this.box = box;
      this.points = new Map();
      this.plot = null;
      this.field = "";
    }

    // Adds a result's value of `field`; false when it has none.
    add(result, field) {
      const at = typeof result.window_end === "number" ? result.window_end : result.ts;
      const value = result[field];
      if (typeof at !== "number" || typeof value !== "number") return false;
      const id = typeof result.window_start === "number" ? result.window_start + ":" + at : at;
      this.points.set(id, [at / 1000, value]);
      if (this.points.size > MAX_POINTS) this.points.delete(this.points.keys().next().value);
      this.field = field;
      return true;
    }

    data() {
      const points = [...this.points.values()].sort((a, b) => a[0] - b[0]);
      return [points.map((p) => p[0]), points.map((p) => p[1])];
    }

    // Draws what it holds; returns the number of points.
    draw() {
      const data = this.data();
      if (!data[0].length) return 0;
      if (this.plot) {
        this.plot.setData(data);
        return data[0].length;
      }
      this.plot = new uPlot(
        {
          width: Math.max(300, this.box.clientWidth || 400),
          height: 240,
          scales: { x: { time: true } },
          tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
          series: [
            { label: "window end (UTC)" },
            { label: this.field, stroke: "#2f6fdf", width: 2, points: { show: true, size: 6 } },
          ],
        },
        data,
        this.box
      );
      return data[0].length;
    }

    reset() {
      if (this.plot) this.plot.destroy();
      this.plot = null;
      this.points.clear();
    }
  }

  window.FaustappChart = KeyChart;
})();
