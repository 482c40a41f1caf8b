#!/usr/bin/env python3
"""The corpus victim's tiny vulnerable web app (for sqlmap and wfuzz), behind nginx's /app/.

Deliberately vulnerable: /app/item?id= and /app/search?q= build SQL by string concatenation
over an in-memory SQLite database; /app/login accepts POSTs (slow-body target). Only ever run
inside the corpus' victim network namespace.

Usage: webapp.py BIND_ADDR PORT
"""
import http.server
import sqlite3
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
DB = sqlite3.connect(":memory:", check_same_thread=False)
DB.executescript(
    """
    CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL);
    CREATE TABLE users (id INTEGER PRIMARY KEY, login TEXT, password TEXT);
    """
)
for i in range(1, 41):
    DB.execute("INSERT INTO items VALUES (?, ?, ?)", (i, f"widget-{i:02d}", 1.5 * i))
for i, (u, p) in enumerate([("alice", "s3cret"), ("bob", "hunter2"), ("admin", "Adm1n!")], 1):
    DB.execute("INSERT INTO users VALUES (?, ?, ?)", (i, u, p))
DB.commit()
# A time-based injection (sqlmap's RANDOMBLOB payloads) may run for minutes and hold the lock
# after its client is gone: any query is cut off after 3 s, long enough for the delays an
# injection measures.
QUERY_START = [0.0]
DB.set_progress_handler(lambda: int(time.monotonic() - QUERY_START[0] > 3.0), 10000)


def page(title, body):
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>".encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "corpus-app/1.0"

    def log_message(self, fmt, *args):  # quiet
        pass

    def send(self, code, body, ctype="text/html"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def query(self, sql):
        with LOCK:
            QUERY_START[0] = time.monotonic()
            return DB.execute(sql).fetchall()

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        path = u.path.removeprefix("/app")
        try:
            if path in ("", "/"):
                self.send(200, page("shop", '<a href="/app/item?id=1">item 1</a> <a href="/app/search?q=widget">search</a>'))
            elif path == "/item":
                rows = self.query("SELECT id, name, price FROM items WHERE id = " + q.get("id", ["1"])[0])
                self.send(200, page("item", "".join(f"<p>{r[0]} {r[1]} {r[2]}</p>" for r in rows)))
            elif path == "/search":
                rows = self.query("SELECT name FROM items WHERE name LIKE '%" + q.get("q", [""])[0] + "%'")
                self.send(200, page("search", "".join(f"<li>{r[0]}</li>" for r in rows)))
            else:
                self.send(404, page("not found", ""))
        except sqlite3.Error as e:  # the error text helps sqlmap, as a careless app would
            self.send(500, page("error", f"<pre>SQL error: {e}</pre>"))

    do_HEAD = do_GET

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.send(200, page("posted", f"<p>{len(body)} bytes</p>"))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


if __name__ == "__main__":
    Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
