// Server-Sent Events read from a fetch() body, so requests can carry an Authorization header
// (EventSource cannot send one). Parses the text/event-stream format: id, event, data lines,
// ":" comments (heartbeats), events separated by a blank line.
(function () {
  "use strict";

  function parse(block) {
    const message = { id: null, event: "message", data: [], comment: false };
    for (const raw of block.split("\n")) {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (line.startsWith(":")) {
        message.comment = true;
        continue;
      }
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "id") message.id = value;
      else if (name === "event") message.event = value;
      else if (name === "data") message.data.push(value);
    }
    message.data = message.data.length ? message.data.join("\n") : null;
    return message;
  }

  // Calls onMessage(message) for each event of the stream until it ends.
  async function read(body, onMessage) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        onMessage(parse(block));
      }
    }
  }

  window.FaustappSSE = { parse, read };
})();
