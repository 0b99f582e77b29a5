// node mysql2 through shoal: query (text) and execute (prepared), transactions,
// multiple statements, pools. Prints `checks passed: N`; exits non-zero on any failure.
const mysql = require('mysql2/promise');
const assert = require('assert');

async function main() {
  const [port, user, password, database] = process.argv.slice(2);
  let checks = 0;
  const ok = (cond, what) => { assert.ok(cond, what); checks++; };
  const conn = await mysql.createConnection({ host: '127.0.0.1', port: Number(port), user, password, database, multipleStatements: true });
  await conn.query('DROP TABLE IF EXISTS node_t');
  await conn.query('CREATE TABLE node_t (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), score DOUBLE, born DATE NULL)');
  const [ins] = await conn.execute('INSERT INTO node_t (name, score, born) VALUES (?, ?, ?)', ['ana', 9.5, '2000-01-02']);
  ok(ins.insertId === 1 && ins.affectedRows === 1, 'execute insert');
  const [q] = await conn.query('INSERT INTO node_t (name, score) VALUES (?, ?), (?, ?)', ['bo', 1.25, 'cy', 2]);
  ok(q.affectedRows === 2, 'query insert');
  for (let i = 0; i < 20; i++) {
    const [rows] = await conn.execute('SELECT name, score FROM node_t WHERE id = ?', [1 + (i % 3)]);
    ok(rows.length === 1 && ['ana', 'bo', 'cy'][i % 3] === rows[0].name, `execute select ${i}`);
  }
  const [multi] = await conn.query('SELECT 1 AS a; SELECT 2 AS b');
  ok(multi.length === 2 && multi[0][0].a === 1 && multi[1][0].b === 2, 'multiple statements');
  await conn.beginTransaction();
  await conn.execute('UPDATE node_t SET score = score + 100 WHERE id = 1');
  await conn.rollback();
  const [[r1]] = await conn.query('SELECT score FROM node_t WHERE id = 1');
  ok(r1.score === 9.5, 'rollback');
  try {
    await conn.execute('SELECT nope FROM node_t');
    ok(false, 'expected error');
  } catch (e) {
    ok(e.errno === 1054, `error code ${e.errno}`);
  }
  await conn.end();

  const pool = mysql.createPool({ host: '127.0.0.1', port: Number(port), user, password, database, connectionLimit: 8 });
  const results = await Promise.all([...Array(32).keys()].map(i => pool.execute('SELECT ? + 1 AS v', [i])));
  ok(results.every(([rows], i) => Number(rows[0].v) === i + 1), 'pool of 8 running 32 executes');
  await pool.end();
  console.log(`mysql2: checks passed: ${checks}`);
}

main().catch(e => { console.error(e); process.exit(1); });
