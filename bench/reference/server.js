// The popular guide's Big Cartel webhook receiver, as written there: express.json(), an HMAC over
// JSON.stringify(req.body) (not the raw bytes), crypto.timingSafeEqual, console.log of the body, sendStatus(200).
// Used only as the reference in bench/receiver.py. Run: SECRET=... PORT=... node server.js > bodies.log
const express = require("express");
const crypto = require("crypto");

const app = express();
const secret = process.env.SECRET;

app.use(express.json());

app.post("/webhook", (req, res) => {
  const signature = req.get("X-Bigcartel-Signature") || "";
  const expected = crypto.createHmac("sha256", secret).update(JSON.stringify(req.body)).digest("hex");
  const a = Buffer.from(signature);
  const b = Buffer.from(expected);
  if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) {
    return res.sendStatus(401);
  }
  console.log(req.body);
  res.sendStatus(200);
});

app.get("/healthz", (req, res) => res.sendStatus(200));

app.listen(Number(process.env.PORT), "127.0.0.1");
