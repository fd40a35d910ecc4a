"""An agent that learns: it stores the facts it is given and answers questions
from what it has stored, on this run or any earlier one (its memory lives in
the engine's context store, encrypted at rest, and survives engine restarts).

Input (all keys optional)::

    {"learn": ["The staging database is backed up at 03:00.", ...],
     "ask": ["When is the staging database backed up?", ...],
     "min_score": 0.3}

Result: ``{"stored": <n>, "answers": [{"question", "answer", "score"}, ...]}``;
a question nothing relevant was stored for gets ``"answer": null``.
"""
from symbi_agent import AgentError, agent

task = agent.input() or {}
learn = task.get("learn") or []
ask = task.get("ask") or []
if isinstance(learn, str):
    learn = [learn]
if isinstance(ask, str):
    ask = [ask]
min_score = float(task.get("min_score", 0.3))

stored = 0
for fact in learn:
    try:
        agent.remember(fact, kind="knowledge", metadata={"source": "input"})
        stored += 1
        print(f"learned fact {stored} ({len(fact)} characters)", flush=True)  # not the text: logs are plaintext
    except AgentError as exc:
        print(f"could not store a fact: {exc.code} {exc.message}", flush=True)

answers = []
for question in ask:
    hits = agent.recall(question, limit=3)
    best = hits[0] if hits else None
    if best is not None and best["score"] >= min_score:
        answers.append({"question": question, "answer": best["content"], "score": round(best["score"], 3)})
        print(f"answered question {len(answers)} (score {best['score']:.2f})", flush=True)
    else:
        answers.append({"question": question, "answer": None, "score": round(best["score"], 3) if best else None})
        print(f"question {len(answers)}: nothing I know answers it", flush=True)

agent.result({"stored": stored, "answers": answers})
