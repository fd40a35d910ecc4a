"""An agent that uses MCP tools through the runtime: it lists a directory and reads a
file with the ``files`` server's ``list_files`` and ``read_file``
(examples/mcp_servers/files_server.py), prints what it got, and reports refusals
cleanly. Every call passes the tool gate: the tool must be reviewed and approved,
policy may ask a human to approve the call (the agent waits meanwhile), and the
server itself refuses paths outside its root.

Input (optional): ``{"server": "files", "dir": ".", "file": "README.txt"}``.
Output (``agent.result``): the entries listed, the file's size in characters,
and each refusal's code.
"""
import json

from symbi_agent import AgentError, agent

task = agent.input() or {}
server = task.get("server", "files")
directory = task.get("dir", ".")
wanted = task.get("file")
outcome = {"listed": None, "read": None, "refused": {}}


def tool(name, arguments):
    """Call ``server/name``; a tool-level error (the server said no) comes back as AgentError too."""
    result = agent.call_tool(f"{server}/{name}", arguments)
    text = "".join(c.get("text", "") for c in result.get("content", []) if c.get("type") == "text")
    if result.get("is_error"):
        raise AgentError("TOOL_ERROR", text or "the tool reported an error")
    if result.get("truncated"):
        print(f"(result of {name} was cut to the runtime's size limit)", flush=True)
    return text


try:
    listing = json.loads(tool("list_files", {"path": directory}))
    entries = listing.get("entries", [])
    outcome["listed"] = [e["name"] for e in entries]
    print(f"{listing.get('path', directory)}: {len(entries)} entries", flush=True)
    for e in entries:
        size = "" if e.get("size") is None else f" {e['size']} bytes"
        print(f"  {e['type']:<4} {e['name']}{size}", flush=True)
    if wanted is None:
        wanted = next((e["name"] if directory in (".", "") else f"{directory}/{e['name']}" for e in entries if e["type"] == "file"), None)
except AgentError as exc:
    outcome["refused"]["list_files"] = exc.code
    print(f"list_files refused: {exc.code}: {exc.message}", flush=True)
except ValueError:
    outcome["refused"]["list_files"] = "BAD_RESULT"
    print("list_files answered something that is not a listing", flush=True)

if wanted:
    try:
        content = tool("read_file", {"path": wanted})
        outcome["read"] = {"path": wanted, "chars": len(content)}
        print(f"--- {wanted} ({len(content)} characters) ---", flush=True)
        print(content[:2000], flush=True)
    except AgentError as exc:
        outcome["refused"]["read_file"] = exc.code
        print(f"read_file refused: {exc.code}: {exc.message}", flush=True)
else:
    print("no file to read", flush=True)

agent.result(outcome)
