"""LLM-as-judge rewards over any OpenAI-compatible chat endpoint (``rewardkit[judge]``).

:class:`Judge` asks a model to grade one completion against a rubric text and the
reference answer; :class:`GroupJudge` (ART's RULER idea) shows the judge a prompt's G
completions together and maps the ranking it returns to rewards. Both are verifiers:
they never raise on model output or on the endpoint's behaviour. Judge prose that does not
parse gives ``unparseable``; an endpoint failure (HTTP error after the retries, a dropped
connection, a body that is not the chat-completions JSON) gives ``error``; a call slower
than ``timeout`` gives ``timeout``; each with a reason.

Requests: ``httpx`` (imported on first use), at most ``max_concurrency`` in flight per
batch, a ``timeout`` per call, retries with exponential backoff on 429 and 5xx (a
``Retry-After`` header is honoured up to ``MAX_RETRY_AFTER`` seconds) and on dropped
connections; never on timeouts (a slow judge would otherwise cost the budget several
times). An item's worst case is ``(max_retries + 1) * timeout`` plus the backoffs. The
API key is read from the environment variable ``api_key_env`` at call time (never stored);
with the variable unset no ``Authorization`` header is sent (a local vLLM server needs none).

Cache: ``cache=`` (True, a sqlite path or a :class:`~rewardkit.cache.VerificationCache`)
keys verdicts by endpoint, model, sampling settings and the exact messages: the same
prompt is never sent twice. Timeouts and errors are not stored.

Templates are data: ``template={"system": ..., "user": ...}`` with the placeholders
``{rubric}``, ``{prompt}``, ``{completion}``, ``{reference}``, ``{instructions}``
(``GroupJudge``: ``{completions}`` instead of ``{completion}``). Limits: grades are parsed
from text, not from structured outputs or logprobs; a judge model is only as good as it is
(the tests here use SmolLM2-135M, which cannot grade: they check the plumbing).
"""

from __future__ import annotations

import asyncio
import json
import math
import numbers
import os
import random
import re
import string
import time
from typing import Any, Mapping, Sequence

from ._async import run_sync
from ._component import Verifier, batch_rows, completion_text, prompt_text, value_text
from ._score import Score, Status, describe
from .errors import invalid_argument

__all__ = ["Judge", "GroupJudge", "parse_grade", "parse_ranking", "DEFAULT_TEMPLATE", "GROUP_TEMPLATE"]

MAX_RETRY_AFTER = 10.0
_MAX_TEXT = 8000  # characters of a completion shown to the judge

DEFAULT_TEMPLATE = {
    "system": "You are a strict grader. Grade the response against the rubric and the reference answer.",
    "user": "Rubric:\n{rubric}\n\nQuestion:\n{prompt}\n\nReference answer:\n{reference}\n\n"
            "Response to grade:\n{completion}\n\n{instructions}",
}
GROUP_TEMPLATE = {
    "system": "You are a strict grader. Rank responses to the same question from best to worst.",
    "user": "Rubric:\n{rubric}\n\nQuestion:\n{prompt}\n\nReference answer:\n{reference}\n\n"
            "Responses:\n{completions}\n\nRank all {count} responses from best to worst. Reply with one line "
            "'Ranking: ' followed by the response numbers, best first, for example 'Ranking: 2 > 1 > 3'.",
}
_INSTRUCTIONS = {
    "number": "Reply with one line 'Score: N' where N is a number from {low:g} to {high:g}.",
    "yesno": "Reply with one word: yes if the response meets the rubric, no if it does not.",
    "letter": "Reply with one line 'Grade: X' where X is a letter grade A, B, C, D or F.",
}
_LETTERS = {"A": 1.0, "B": 0.75, "C": 0.5, "D": 0.25, "E": 0.0, "F": 0.0}
_NUMBER = r"[-+]?\d+(?:\.\d+)?"


# parsing ------------------------------------------------------------------------------
def parse_grade(text: str, grade: str = "number", scale: tuple[float, float] = (0.0, 10.0)) -> tuple[float | None, str]:
    """``(value in [0, 1], answer)`` from a judge's reply, or ``(None, why)``. Never raises.

    number: ``Score: 7``, ``7/10`` or a lone number, within ``scale``; yesno: yes or no
    (both or neither: None); letter: ``Grade: B`` or a lone letter (A=1 ... F=0).
    """
    text = (value_text(text)[0] or "")[:_MAX_TEXT]
    if grade == "number":
        low, high = scale
        m = (re.search(rf"(?:score|rating|grade)\s*[:=]?\s*\**\s*({_NUMBER})", text, re.I)
             or re.search(rf"({_NUMBER})\s*/\s*{re.escape(format(high, 'g'))}\b", text))
        found = [m.group(1)] if m else re.findall(_NUMBER, text)
        if len(found) != 1:
            return None, "no score found" if not found else f"{len(found)} numbers and no 'Score:' line"
        n = float(found[0])
        if not low <= n <= high:
            return None, f"score {found[0]} outside {low:g}..{high:g}"
        return (n - low) / (high - low), found[0]
    if grade == "yesno":
        words = re.findall(r"[a-z]+", text.lower())
        has = {w for w in words if w in ("yes", "no")}
        if len(has) == 1:
            (w,) = has
            return (1.0 if w == "yes" else 0.0), w
        return None, "both yes and no" if has else "no yes/no found"
    m = re.search(r"grade\s*[:=]?\s*\**\s*([A-F])\b", text, re.I) or re.fullmatch(r"\W*([A-F])[+-]?\W*", text.strip(), re.I)
    if not m:
        return None, "no letter grade found"
    letter = m.group(1).upper()
    return _LETTERS[letter], letter


def parse_ranking(text: str, count: int) -> tuple[list[int] | None, str]:
    """The 0-based indices best first from ``Ranking: 2 > 1 > 3`` (1-based in the text),
    or ``(None, why)``: every response must appear exactly once."""
    text = (value_text(text)[0] or "")[:_MAX_TEXT]
    m = re.search(r"ranking\s*[:=]?\s*(.*)", text, re.I | re.S)
    numbers_ = [int(x) for x in re.findall(r"\d+", (m.group(1) if m else text))[: count * 3]]
    order: list[int] = []
    for x in numbers_:
        if 1 <= x <= count and x - 1 not in order:
            order.append(x - 1)
        if len(order) == count:
            break
    if len(order) != count:
        return None, f"ranking names {len(order)} of the {count} responses"
    return order, " > ".join(str(i + 1) for i in order)


# the endpoint -------------------------------------------------------------------------
class _Failure(Exception):
    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _check_common(base_url, model, api_key_env, max_concurrency, timeout, max_retries, backoff, temperature,
                  max_tokens, template, placeholders) -> dict:
    if not isinstance(base_url, str) or not re.match(r"https?://[^\s/]+", base_url):
        raise invalid_argument("base_url", base_url, "must be an http(s) URL such as http://127.0.0.1:8000/v1")
    if not isinstance(model, str) or not model:
        raise invalid_argument("model", model, "must be a non-empty model name")
    if not isinstance(api_key_env, str) or not api_key_env:
        raise invalid_argument("api_key_env", api_key_env, "must name an environment variable")
    for field, value, lo in (("max_concurrency", max_concurrency, 1), ("max_retries", max_retries, 0),
                             ("max_tokens", max_tokens, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise invalid_argument(field, value, f"must be an int >= {lo}")
    for field, value in (("timeout", timeout), ("backoff", backoff), ("temperature", temperature)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
            raise invalid_argument(field, value, "must be a finite number >= 0")
    if timeout <= 0:
        raise invalid_argument("timeout", timeout, "must be > 0 seconds")
    if not isinstance(template, Mapping) or set(template) != {"system", "user"}:
        raise invalid_argument("template", template, "must be a mapping with exactly the keys 'system' and 'user'")
    for key, text in template.items():
        if not isinstance(text, str):
            raise invalid_argument(f"template[{key!r}]", text, "must be a string")
        used = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        if used - placeholders:
            raise invalid_argument(f"template[{key!r}]", text[:60], f"uses {sorted(used - placeholders)}; "
                                   f"allowed placeholders are {sorted(placeholders)}")
    return {"base_url": base_url.rstrip("/"), "model": model}


_OPERATIONAL = ("cache", "calls", "max_concurrency", "timeout", "max_retries", "backoff", "api_key_env")


class _JudgeBase(Verifier):
    """What both judges share: the endpoint, retries, concurrency and the cache."""

    range = (0.0, 1.0)
    cache_ignores = _OPERATIONAL  # counters, the cache and how calls are made are no options

    def __init__(self, rubric, *, base_url, model, api_key_env, reference_column, template, max_concurrency,
                 timeout, max_retries, backoff, temperature, max_tokens, cache, name, placeholders) -> None:
        super().__init__(name=name)
        from .cache import as_cache

        if not isinstance(rubric, str) or not rubric.strip():
            raise invalid_argument("rubric", rubric, "must be a non-empty rubric text")
        if not isinstance(reference_column, str) or not reference_column:
            raise invalid_argument("reference_column", reference_column, "must be a column name")
        checked = _check_common(base_url, model, api_key_env, max_concurrency, timeout, max_retries, backoff,
                                temperature, max_tokens, template, placeholders)
        self.rubric, self.reference_column, self.template = rubric, reference_column, dict(template)
        self.base_url, self.model, self.api_key_env = checked["base_url"], checked["model"], api_key_env
        self.max_concurrency, self.timeout, self.max_retries = max_concurrency, float(timeout), max_retries
        self.backoff, self.temperature, self.max_tokens = float(backoff), float(temperature), max_tokens
        self.cache = as_cache(cache)
        self.calls = 0  # requests sent (retries included); for tests and benchmarks

    def _render(self, fields: Mapping[str, Any]) -> list[dict]:
        """The template's system and user messages with ``fields`` filled in."""
        return [{"role": role, "content": self.template[role].format(**fields)} for role in ("system", "user")]

    def _client(self) -> Any:
        import httpx

        return httpx.AsyncClient(timeout=self.timeout, trust_env=False,
                                 limits=httpx.Limits(max_connections=self.max_concurrency))

    def _endpoint_identity(self) -> str:
        """What a reply depends on besides the messages: the same model and prompt is one call,
        whatever the concurrency, timeout or retries of the judge that asks."""
        opts = {k: getattr(self, k, None) for k in ("base_url", "model", "temperature", "max_tokens")}
        return "judge-reply(" + json.dumps(opts, sort_keys=True, default=repr) + ")"

    def _score(self, text: str, **columns: Any) -> Score:
        return run_sync(lambda: self._ascore_rows([text], [columns]))[0]

    def _score_rows(self, completions: list, rows: list[dict[str, Any]]) -> list[Score]:
        """All calls of the batch concurrently (up to ``max_concurrency``); with ``workers``
        the base class's process pool scores item by item instead."""
        return run_sync(lambda: self._ascore_rows(completions, rows))

    async def ascore_batch(self, completions: Sequence[Any], *, prompts: Sequence[Any] | None = None,
                           **columns: Any) -> list[Score]:
        """Scores in input order; never raises on what the endpoint does. ``columns`` are
        per-row lists (``prompt``, the reference); mis-shaped ones raise ``InvalidArgument``."""
        return await self._ascore_rows(list(completions), batch_rows(len(completions), prompts, columns))

    async def _ascore_rows(self, completions: list, rows: list[dict[str, Any]]) -> list[Score]:
        raise NotImplementedError

    # one request, with retries -----------------------------------------------------------
    async def _chat(self, client: Any, gate: asyncio.Semaphore, messages: list[dict]) -> str:
        """The judge's reply text; raises ``_Failure`` with a status and a reason."""
        import httpx

        key = None
        if self.cache is not None:
            key = self.cache.key(self._endpoint_identity(), json.dumps(messages, ensure_ascii=False), {})
            hit = self.cache.get(key)
            if hit is not None:
                if hit.status is Status.OK:
                    return str(hit.details.get("reply", ""))
        body = {"model": self.model, "messages": messages, "temperature": self.temperature,
                "max_tokens": self.max_tokens}
        headers = {}
        api_key = os.environ.get(self.api_key_env)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), 30.0) * (0.5 + random.random() / 2))
            async with gate:
                self.calls += 1
                try:
                    response = await asyncio.wait_for(
                        client.post(f"{self.base_url}/chat/completions", json=body, headers=headers),
                        self.timeout)
                except (asyncio.TimeoutError, httpx.TimeoutException):
                    raise _Failure(Status.TIMEOUT, f"judge gave no answer within {self.timeout:g} s") from None
                except httpx.HTTPError as exc:  # dropped connection, refused, protocol error
                    last = describe(exc)[:120]
                    continue
            if response.status_code == 429 or response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                wait = _retry_after(response.headers.get("retry-after"))
                if wait and attempt < self.max_retries:
                    await asyncio.sleep(wait)
                continue
            if response.status_code >= 400:
                raise _Failure(Status.ERROR, f"HTTP {response.status_code}: {response.text[:120]}")
            reply = _reply_text(response)
            if key is not None:
                self.cache.put(key, Score.ok(1.0, "judge reply", reply=reply))
            return reply
        raise _Failure(Status.ERROR, f"{last} after {self.max_retries + 1} attempts")


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, min(float(value), MAX_RETRY_AFTER)) if value else 0.0
    except ValueError:
        return 0.0


def _reply_text(response: Any) -> str:
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
    except Exception as exc:  # noqa: BLE001 - garbage from the endpoint is its failure, not ours
        raise _Failure(Status.ERROR, f"endpoint returned no chat completion ({type(exc).__name__}): "
                                     f"{response.text[:80]!r}") from None
    if not isinstance(content, str):
        raise _Failure(Status.ERROR, f"endpoint returned content of type {type(content).__name__}")
    return content


def _question(prompt: Any) -> str:
    """The question: the user turns of a chat prompt, or the prompt text."""
    return prompt_text(prompt, ("user",)) or completion_text(prompt)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "\n[... truncated]"


class Judge(_JudgeBase):
    """Grades each completion with one chat call; see the module docstring.

    ``grade``: ``"number"`` (within ``scale``, mapped to [0, 1]), ``"yesno"`` (1 / 0) or
    ``"letter"`` (A=1, B=0.75, C=0.5, D=0.25, F=0). ``Status.OK`` when the value reaches
    ``pass_threshold``, else ``WRONG``; the judge's reply is in ``Score.details["reply"]``.
    """

    default_name = "judge"

    def __init__(self, rubric: str = "Is the response correct and complete?", *, base_url: str, model: str,
                 api_key_env: str = "OPENAI_API_KEY", grade: str = "number", scale: tuple[float, float] = (0, 10),
                 pass_threshold: float = 0.5, reference_column: str = "answer",
                 template: Mapping[str, str] = DEFAULT_TEMPLATE, max_concurrency: int = 8, timeout: float = 30.0,
                 max_retries: int = 3, backoff: float = 0.5, temperature: float = 0.0, max_tokens: int = 64,
                 cache: Any = None, name: str | None = None) -> None:
        if grade not in _INSTRUCTIONS:
            raise invalid_argument("grade", grade, f"must be one of {sorted(_INSTRUCTIONS)}")
        if (not isinstance(scale, (tuple, list)) or len(scale) != 2 or any(
                isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x) for x in scale)
                or not scale[0] < scale[1]):
            raise invalid_argument("scale", scale, "must be (low, high) finite numbers with low < high")
        if isinstance(pass_threshold, bool) or not isinstance(pass_threshold, numbers.Real) or not 0 <= pass_threshold <= 1:
            raise invalid_argument("pass_threshold", pass_threshold, "must be in [0, 1]")
        super().__init__(rubric, base_url=base_url, model=model, api_key_env=api_key_env,
                         reference_column=reference_column, template=template, max_concurrency=max_concurrency,
                         timeout=timeout, max_retries=max_retries, backoff=backoff, temperature=temperature,
                         max_tokens=max_tokens, cache=cache, name=name,
                         placeholders={"rubric", "prompt", "completion", "reference", "instructions"})
        self.grade, self.scale = grade, (float(scale[0]), float(scale[1]))
        self.pass_threshold = float(pass_threshold)

    def messages(self, completion: Any, prompt: Any = None, reference: Any = None) -> list[dict]:
        """The chat messages sent for one completion (for inspection and tests)."""
        low, high = self.scale
        fields = {"rubric": self.rubric, "prompt": _clip(_question(prompt)),
                  "completion": _clip(completion_text(completion)),
                  "reference": value_text(reference)[0] or "(none)",
                  "instructions": _INSTRUCTIONS[self.grade].format(low=low, high=high)}
        return self._render(fields)

    async def _ascore_rows(self, completions: list, rows: list[dict[str, Any]]) -> list[Score]:
        prompts = [r.get("prompt") for r in rows]
        refs = [r.get(self.reference_column) for r in rows]
        gate = asyncio.Semaphore(self.max_concurrency)
        async with self._client() as client:
            return list(await asyncio.gather(*(self._one(client, gate, c, p, r)
                                               for c, p, r in zip(completions, prompts, refs))))

    async def _one(self, client: Any, gate: asyncio.Semaphore, completion: Any, prompt: Any, ref: Any) -> Score:
        start = time.perf_counter()
        try:
            reply = await self._chat(client, gate, self.messages(completion, prompt, ref))
        except _Failure as f:
            return Score(0.0, f.status, None, f.reason, time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - never raise on what the endpoint does
            return Score.error(reason=describe(exc)[:150], elapsed=time.perf_counter() - start)
        value, answer = parse_grade(reply, self.grade, self.scale)
        elapsed = time.perf_counter() - start
        if value is None:
            return Score(0.0, Status.UNPARSEABLE, None, f"judge reply unparseable ({answer}): {reply[:120]!r}",
                         elapsed, {"reply": reply[:2000]})
        status = Status.OK if value >= self.pass_threshold else Status.WRONG
        return Score(value, status, answer, f"judge graded {answer}", elapsed, {"reply": reply[:2000]})


class GroupJudge(_JudgeBase):
    """Ranks each prompt's completions together in one call (ART's RULER idea).

    Completions of one group are consecutive items with the same prompt (as GRPO lays them
    out). The best gets 1.0, the worst 0.0, linearly between; a group of one gets 1.0.
    A reply that does not rank every completion exactly once makes the whole group
    ``unparseable``; ``max_group`` bounds how many completions one call may show.
    """

    default_name = "group_judge"

    def __init__(self, rubric: str = "Which responses answer the question correctly and clearly?", *,
                 base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", reference_column: str = "answer",
                 template: Mapping[str, str] = GROUP_TEMPLATE, max_group: int = 16, max_concurrency: int = 8,
                 timeout: float = 60.0, max_retries: int = 3, backoff: float = 0.5, temperature: float = 0.0,
                 max_tokens: int = 128, cache: Any = None, name: str | None = None) -> None:
        if isinstance(max_group, bool) or not isinstance(max_group, int) or max_group < 2:
            raise invalid_argument("max_group", max_group, "must be an int >= 2")
        super().__init__(rubric, base_url=base_url, model=model, api_key_env=api_key_env,
                         reference_column=reference_column, template=template, max_concurrency=max_concurrency,
                         timeout=timeout, max_retries=max_retries, backoff=backoff, temperature=temperature,
                         max_tokens=max_tokens, cache=cache, name=name,
                         placeholders={"rubric", "prompt", "completions", "reference", "count"})
        self.max_group = max_group

    def cache_identity(self) -> None:
        """Not cacheable per item (a reward depends on the whole group); the judge's own
        ``cache`` still keys whole-group calls."""
        return None

    def messages(self, completions: Sequence[Any], prompt: Any = None, reference: Any = None) -> list[dict]:
        shown = "\n\n".join(f"[{i + 1}]\n{_clip(completion_text(c))}" for i, c in enumerate(completions))
        fields = {"rubric": self.rubric, "prompt": _clip(_question(prompt)), "completions": shown,
                  "reference": value_text(reference)[0] or "(none)", "count": len(completions)}
        return self._render(fields)

    async def _ascore_rows(self, completions: list, rows: list[dict[str, Any]]) -> list[Score]:
        n = len(completions)
        prompts = [r.get("prompt") for r in rows]
        refs = [r.get(self.reference_column) for r in rows]
        groups: list[list[int]] = []
        for i in range(n):
            same = groups and i - 1 in groups[-1] and _same(prompts[i], prompts[i - 1]) and len(groups[-1]) < self.max_group
            if same:
                groups[-1].append(i)
            else:
                groups.append([i])
        gate = asyncio.Semaphore(self.max_concurrency)
        out: list[Score] = [Score.error()] * n
        async with self._client() as client:
            done = await asyncio.gather(*(self._group(client, gate, [completions[i] for i in g], prompts[g[0]],
                                                      refs[g[0]]) for g in groups))
        for g, scores in zip(groups, done):
            for i, s in zip(g, scores):
                out[i] = s
        return out

    async def _group(self, client, gate, completions, prompt, ref) -> list[Score]:
        start = time.perf_counter()
        k = len(completions)
        if k == 1:
            return [Score.ok(1.0, "a group of one")]
        try:
            reply = await self._chat(client, gate, self.messages(completions, prompt, ref))
        except _Failure as f:
            return [Score(0.0, f.status, None, f.reason, time.perf_counter() - start)] * k
        except Exception as exc:  # noqa: BLE001
            return [Score.error(reason=describe(exc)[:150])] * k
        order, why = parse_ranking(reply, k)
        elapsed = (time.perf_counter() - start) / k
        if order is None:
            return [Score(0.0, Status.UNPARSEABLE, None, f"judge ranking unparseable ({why}): {reply[:100]!r}",
                          elapsed, {"reply": reply[:2000]})] * k
        out: list[Score] = [Score.error()] * k
        for rank, i in enumerate(order):
            value = 1.0 - rank / (k - 1)
            out[i] = Score(value, Status.OK, str(rank + 1), f"ranked {rank + 1} of {k}", elapsed, {"ranking": why})
        return out


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - hostile prompts compare unequal
        return False
