// Decodes Kinesis records with AWS's own KPL deaggregator (aws-kinesis-agg,
// pinned in package-lock.json), checksums verified.
// stdin:  [{"data": base64, "partitionKey": s, "sequenceNumber": s}, ...]
// stdout: [{"data": base64, "partitionKey": s, "sequenceNumber": s,
//           "subSequenceNumber": n or null, "error": s or null}, ...]
'use strict';
const agg = require('aws-kinesis-agg');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  const out = [];
  for (const rec of JSON.parse(input)) {
    agg.deaggregateSync(rec, true, (err, users) => {
      if (err) {
        out.push({ data: rec.data, partitionKey: rec.partitionKey,
                   sequenceNumber: rec.sequenceNumber, subSequenceNumber: null,
                   error: String(err) });
        return;
      }
      for (const u of users) {
        out.push({ data: u.data, partitionKey: u.partitionKey,
                   sequenceNumber: u.sequenceNumber,
                   subSequenceNumber: u.subSequenceNumber === undefined ? null : u.subSequenceNumber,
                   error: null });
      }
    });
  }
  process.stdout.write(JSON.stringify(out));
});
