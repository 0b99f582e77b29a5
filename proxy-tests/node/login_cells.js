// Logs in once per cell and prints one JSON line per cell: the account the server saw, or
// the error. Cells: one JSON list in argv[2]; each has name, port, user, password, tls.
const mysql = require('mysql2/promise');

async function login(cell) {
  const opts = { host: '127.0.0.1', port: cell.port, user: cell.user, password: cell.password };
  if (cell.tls) opts.ssl = { rejectUnauthorized: false };
  const conn = await mysql.createConnection(opts);
  const [[row]] = await conn.query('SELECT CURRENT_USER() AS u');
  await conn.end();
  return row.u;
}

async function main() {
  for (const cell of JSON.parse(process.argv[2])) {
    try {
      console.log(JSON.stringify({ name: cell.name, ok: true, user: await login(cell) }));
    } catch (e) {
      console.log(JSON.stringify({ name: cell.name, ok: false, errno: e.errno ?? null, msg: String(e.message) }));
    }
  }
}

main().catch(e => { console.error(e); process.exit(1); });
