"""Screen 5: the policy editor — edit ``access_policies.yaml``, see its problems, test and save it.

The YAML is in a code editor (tree-sitter highlighting when the ``yaml``
grammar is installed, a plain editor otherwise). Each edit is validated
after a short pause: problems are listed in the *Problems* panel and marked
at their lines in the editor's gutter, and the diff against the policy in
force is refreshed. The *Test* panel evaluates a request (JSON) against the
edited policy and explains the decision; the *Replay* panel replays the
decisions recorded in the audit trail against it. Saving (``ctrl+s``)
shows the diff and the replay summary, asks, then calls
``engine.policies.save`` (atomic write, previous version kept, reload, audited).
Read-only mode shows and tests but cannot save.

The editor is not focused when the screen opens, so the number keys still
switch screens; ``e`` (or a click) puts the cursor in it and Escape leaves it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from importlib.util import find_spec

from rich.style import Style
from rich.text import Text
from textual import work
from textual.containers import Container, VerticalScroll
from textual.events import Resize
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import OptionList, Static, TabbedContent, TabPane, TextArea
from textual.widgets.option_list import Option

from console.actions import POLICY, bindings_for
from console.dialogs import ConfirmDialog
from console.format import theme_colour
from console.screens.base import ConsoleScreen
from console.widgets import PolicyEditor
from engine.api import Diagnostic, PolicyDecision, PolicyDiff, PolicyReplay, SaveResult
from engine.errors import ErrorCode, SymbiError
from engine.events import Event, PolicyReloaded

CHECK_DELAY = 0.3  # seconds of quiet typing before the draft is validated
NARROW = 110  # below this width the panels go under the editor
DECISION_COLOURS = {"Allow": "success", "Audit": "warning", "RequireApproval": "warning", "Deny": "error"}
DEFAULT_REQUEST = """\
{
  "agent_id": "demo-agent",
  "resource_type": "Secret",
  "resource_path": "shared/db_password",
  "operation": "Read"
}
"""


def editor_language(preferred: str = "yaml") -> str | None:
    """``yaml`` if this install has tree-sitter and the grammar (``textual[syntax]``), else None
    (the editor is then plain text)."""
    try:
        found = find_spec("tree_sitter") is not None and find_spec(f"tree_sitter_{preferred}") is not None
    except (ImportError, ValueError):
        found = False
    return preferred if found else None


def sha_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PolicyScreen(ConsoleScreen):
    """Screen 5: the access policy file."""

    SCOPE = POLICY
    BINDINGS = bindings_for(POLICY)
    AUTO_FOCUS = "#policy-problems"

    class Loaded(Message):
        def __init__(self, path: str, text: str) -> None:
            super().__init__()
            self.path = path
            self.text = text

    class Checked(Message):
        def __init__(self, text: str, diagnostics: tuple[Diagnostic, ...], diff: PolicyDiff) -> None:
            super().__init__()
            self.text = text
            self.diagnostics = diagnostics
            self.diff = diff

    class Evaluated(Message):
        def __init__(self, result: Text) -> None:
            super().__init__()
            self.result = result

    class Replayed(Message):
        def __init__(self, text: str, report: PolicyReplay | None, error: SymbiError | None) -> None:
            super().__init__()
            self.text = text
            self.report = report
            self.error = error

    class Saved(Message):
        def __init__(self, text: str, result: SaveResult) -> None:
            super().__init__()
            self.text = text
            self.result = result

    def __init__(self) -> None:
        super().__init__(id="policy")
        self.language = editor_language()
        self.policy_path = ""  # the policy file, as the engine names it
        self.in_force = ""  # the text of the policy in force (the file as last loaded or saved)
        self.diagnostics: list[Diagnostic] = []
        self.diff: PolicyDiff | None = None
        self.replay_report: PolicyReplay | None = None
        self.loaded = False
        self._check_timer: Timer | None = None
        self._eval_timer: Timer | None = None
        self._checked_text: str | None = None
        self._saving: str | None = None  # sha256 of the text being saved (its reload is ours)

    def compose_body(self) -> Iterable[Widget]:
        with Container(id="policy-main"):
            yield PolicyEditor.code_editor(
                "",
                language=self.language,
                theme="css",
                id="policy-editor",
                classes="panel",
            )
            with TabbedContent(id="policy-side", initial="problems"):
                with TabPane("Problems", id="problems"):
                    yield OptionList(id="policy-problems", compact=True)
                with TabPane("Test", id="test"):
                    yield TextArea.code_editor(
                        DEFAULT_REQUEST,
                        language="json" if self.language else None,
                        theme="css",
                        show_line_numbers=False,
                        tab_behavior="focus",
                        id="policy-request",
                    )
                    yield Static(id="policy-decision")
                with TabPane("Diff", id="diff"):
                    with VerticalScroll(id="policy-diff-box"):
                        yield Static(id="policy-diff", markup=False)
                with TabPane("Replay", id="replay"):
                    with VerticalScroll(id="policy-replay-box"):
                        yield Static("f5 replays the recorded decisions against the edited policy", id="policy-replay")

    def on_mount(self) -> None:
        editor = self.editor
        editor.indent_width = 2
        self._editor_theme()
        self.watch(self.app, "theme", lambda _: self._editor_theme(), init=False)
        self._load()

    def _editor_theme(self) -> None:
        dark = self.app.current_theme.dark
        for area in (self.editor, self.query_one("#policy-request", TextArea)):
            area.theme = "css" if dark else "github_light"

    def on_resize(self, event: Resize) -> None:
        self.query_one("#policy-main").set_class(event.size.width < NARROW, "-narrow")

    @property
    def editor(self) -> PolicyEditor:
        return self.query_one("#policy-editor", PolicyEditor)

    @property
    def dirty(self) -> bool:
        return self.loaded and self.editor.text != self.in_force

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    # -- loading ------------------------------------------------------------------------

    @work(group="policy-load", exclusive=True)
    async def _load(self) -> None:
        try:
            document = await self.console.engine.policies.get()
        except SymbiError as exc:
            self.console.show_error(exc, title="Policy")
            return
        self.post_message(self.Loaded(document.path, document.text))

    def on_policy_screen_loaded(self, message: Loaded) -> None:
        self.policy_path = message.path
        self.in_force = message.text
        editor = self.editor
        editor.border_title = self.console.display_path(message.path)
        editor.load_text(message.text)
        self.loaded = True
        self._show_titles()
        self._check_now()

    def engine_update(self, events: list[Event]) -> None:
        for event in events:
            if not isinstance(event, PolicyReloaded):
                continue
            if not event.ok:
                self.notify(
                    f"the policy file on disk was rejected; the last good policy stays in force.\n{event.error}",
                    title="Policy",
                    severity="error",
                    timeout=10,
                    markup=False,
                )
            elif self.loaded and event.sha256 not in (sha_of(self.in_force), self._saving):
                if self.dirty:
                    self.notify(
                        "the policy file changed on disk; ctrl+o loads it (your edits are kept until then)",
                        title="Policy",
                        severity="warning",
                    )
                else:
                    self._load()

    # -- validating as you type --------------------------------------------------------------

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if not self.loaded:
            return
        if event.text_area.id == "policy-editor":
            self._show_titles()
            if self._check_timer is not None:
                self._check_timer.stop()
            self._check_timer = self.set_timer(CHECK_DELAY, self._check_now, name="policy-check")
        elif event.text_area.id == "policy-request":
            self._schedule_eval()

    def _check_now(self) -> None:
        self._check(self.editor.text)

    @work(group="policy-check", exclusive=True, description="validate the edited policy")
    async def _check(self, text: str) -> None:
        try:
            check = await self.console.engine.policies.validate(text)
        except SymbiError as exc:
            self.console.show_error(exc, title="Policy check")
            return
        self.post_message(self.Checked(text, check.diagnostics, check.diff))

    def on_policy_screen_checked(self, message: Checked) -> None:
        if message.text != self.editor.text:
            return  # stale: another check follows
        self._checked_text = message.text
        self.diagnostics = sorted(message.diagnostics, key=lambda d: (d.line, d.column, d.severity != "error"))
        self.diff = message.diff
        self.editor.set_marks(self.diagnostics)
        self._show_problems()
        self._show_diff()
        self._show_titles()
        self._schedule_eval(0.0)

    def _show_problems(self) -> None:
        problems = self.query_one("#policy-problems", OptionList)
        highlighted = problems.highlighted
        problems.clear_options()
        variables = self.app.theme_variables
        if not self.diagnostics:
            problems.add_option(Option(Text("✔ no problems", style=theme_colour(variables, "success")), disabled=True))
            return
        for index, d in enumerate(self.diagnostics):
            colour = "error" if d.severity == "error" else "warning"
            text = Text.assemble(
                (f"{d.line}:{d.column}", theme_colour(variables, "foreground-muted")),
                " ",
                (d.severity, theme_colour(variables, colour)),
                " ",
                (d.code, theme_colour(variables, "foreground-muted")),
                " ",
                d.message,
            )
            problems.add_option(Option(text, id=str(index)))
        problems.highlighted = highlighted if highlighted is not None and highlighted < problems.option_count else 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id != "policy-problems" or event.option.id is None:
            return
        event.stop()
        d = self.diagnostics[int(event.option.id)]
        editor = self.editor
        editor.move_cursor((max(0, d.line - 1), max(0, d.column - 1)), center=True)
        editor.focus()

    def _show_diff(self) -> None:
        variables = self.app.theme_variables
        diff = self.diff
        out = Text()
        if diff is None or diff.empty:
            out.append(
                "no changes: the editor holds the policy in force", style=theme_colour(variables, "foreground-muted")
            )
        else:
            for line in diff.summary():
                colour = {"+": "success", "-": "error", "~": "warning"}.get(line[:1], "foreground-muted")
                out.append(line + "\n", style=theme_colour(variables, colour))
            out.append("\n")
            for line in diff.unified.splitlines():
                if line.startswith(("+++", "---")):
                    style = theme_colour(variables, "foreground-muted")
                elif line.startswith("+"):
                    style = theme_colour(variables, "success")
                elif line.startswith("-"):
                    style = theme_colour(variables, "error")
                elif line.startswith("@@"):
                    style = theme_colour(variables, "accent")
                else:
                    style = theme_colour(variables, "foreground")
                out.append(line + "\n", style=style)
        self.query_one("#policy-diff", Static).update(out)

    def _show_titles(self) -> None:
        editor = self.editor
        if not self.loaded:
            editor.border_subtitle = "loading…"
            return
        errors = len(self.errors)
        warnings = len(self.diagnostics) - errors
        parts = []
        if self._checked_text != editor.text:
            parts.append("checking…")
        elif errors or warnings:
            if errors:
                parts.append(f"{errors} error{'s' if errors != 1 else ''}")
            if warnings:
                parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
        else:
            parts.append("valid")
        parts.append("modified" if self.dirty else "in force")
        if self.console.readonly:
            parts.append("read-only")
        if self.language is None:
            parts.append("plain text")
        editor.border_subtitle = " · ".join(parts)
        tabs = self.query_one("#policy-side", TabbedContent)
        tabs.get_tab("problems").label = f"Problems ({len(self.diagnostics)})" if self.diagnostics else "Problems"

    # -- testing a request ---------------------------------------------------------------------

    def _schedule_eval(self, delay: float = CHECK_DELAY) -> None:
        if self._eval_timer is not None:
            self._eval_timer.stop()
        self._eval_timer = self.set_timer(max(delay, 0.01), self._evaluate_now, name="policy-eval")

    def _evaluate_now(self) -> None:
        request = self.query_one("#policy-request", TextArea).text
        draft = self.editor.text if not self.errors else None
        self._evaluate(request, draft)

    @work(group="policy-eval", exclusive=True, description="test a request against the edited policy")
    async def _evaluate(self, request_text: str, draft: str | None) -> None:
        variables = self.app.theme_variables
        muted = theme_colour(variables, "foreground-muted")
        error = theme_colour(variables, "error")
        try:
            request = json.loads(request_text)
        except ValueError as exc:
            self.post_message(self.Evaluated(Text(f"the request is not valid JSON: {exc}", style=error)))
            return
        if not isinstance(request, dict):
            self.post_message(self.Evaluated(Text("the request must be a JSON object", style=error)))
            return
        policies = self.console.engine.policies
        in_force: PolicyDecision | None = None
        try:
            decision = await policies.test(request, draft)
            if draft is not None:
                in_force = await policies.test(request)
        except SymbiError as exc:
            self.post_message(self.Evaluated(Text(f"{exc.code.value}: {exc.message}", style=error)))
            return
        out = Text()
        out.append(decision.decision, style=theme_colour(variables, DECISION_COLOURS.get(decision.decision, "")))
        out.append(" by ", style=muted)
        out.append(decision.policy or "the default effect (no policy matched)")
        if decision.priority is not None:
            out.append(f" (priority {decision.priority})", style=muted)
        out.append("\nreason ", style=muted)
        out.append(decision.reason)
        if decision.matched_conditions:
            out.append("\nmatched", style=muted)
            for condition in decision.matched_conditions:
                out.append(f"\n  • {condition}")
        if draft is None:
            out.append("\n(the edited policy has errors: this is the policy in force)", style=muted)
        elif in_force is not None and (in_force.decision, in_force.policy) != (decision.decision, decision.policy):
            out.append("\nin force now: ", style=muted)
            out.append(in_force.decision, style=theme_colour(variables, DECISION_COLOURS.get(in_force.decision, "")))
            out.append(f" by {in_force.policy or 'the default effect'}", style=muted)
        self.post_message(self.Evaluated(out))

    def on_policy_screen_evaluated(self, message: Evaluated) -> None:
        self.query_one("#policy-decision", Static).update(message.result)

    # -- replay ------------------------------------------------------------------------------

    def _replay_now(self) -> None:
        if self.errors:
            self.query_one("#policy-replay", Static).update(
                Text("fix the errors first: only a valid policy can be replayed", style=self._colour("error"))
            )
            return
        self.query_one("#policy-replay", Static).update(Text("replaying the recorded decisions…"))
        self._replay(self.editor.text)

    @work(group="policy-replay", exclusive=True, description="replay the recorded decisions")
    async def _replay(self, text: str) -> None:
        try:
            report = await self.console.engine.policies.replay(text)
        except SymbiError as exc:
            self.post_message(self.Replayed(text, None, exc))
            return
        self.post_message(self.Replayed(text, report, None))

    def on_policy_screen_replayed(self, message: Replayed) -> None:
        self.replay_report = message.report
        out = Text()
        if message.error is not None:
            out.append(f"{message.error.code.value}: {message.error.message}", style=self._colour("error"))
        elif message.report is not None:
            out = self._replay_text(message.report, limit=200)
        self.query_one("#policy-replay", Static).update(out)

    def _replay_text(self, report: PolicyReplay, limit: int) -> Text:
        changed = len(report.changed)
        out = Text()
        out.append(replay_summary(report), style=self._colour("warning" if changed else "success"))
        for change in report.changed[:limit]:
            out.append("\n  " + self.console.display_path(change.summary))
        if changed > limit:
            out.append(f"\n  … and {changed - limit} more", style=self._colour("foreground-muted"))
        for error in report.errors[:limit]:
            out.append(f"\n  {error}", style=self._colour("error"))
        return out

    def _colour(self, name: str) -> Style:
        return theme_colour(self.app.theme_variables, name)

    # -- actions -------------------------------------------------------------------------------

    def action_edit(self) -> None:
        self.editor.focus()

    def action_panel(self, name: str) -> None:
        self.query_one("#policy-side", TabbedContent).active = name
        if name == "problems":
            self.query_one("#policy-problems", OptionList).focus()
        elif name == "test":
            self.query_one("#policy-request", TextArea).focus()
        elif name == "replay":
            self._replay_now()

    def action_revert(self) -> None:
        self._revert()

    @work(group="policy-revert", exclusive=True)
    async def _revert(self) -> None:
        try:
            document = await self.console.engine.policies.get()
        except SymbiError as exc:
            self.console.show_error(exc, title="Cannot revert")
            return
        if self.editor.text != document.text and self.dirty:
            question = "Discard your edits and load the policy in force again?"
            if not await self.app.push_screen_wait(ConfirmDialog("Revert edits?", question, yes="Discard")):
                return
        self.post_message(self.Loaded(document.path, document.text))

    def action_save(self) -> None:
        if not self.loaded:
            return
        self._save(self.editor.text)

    @work(group="policy-save", exclusive=True, description="save the edited policy")
    async def _save(self, text: str) -> None:
        policies = self.console.engine.policies
        try:
            check = await policies.validate(text)
        except SymbiError as exc:
            self.console.show_error(exc, title="Cannot save")
            return
        errors = check.errors
        if errors:
            first = errors[0]
            self.console.show_error(
                SymbiError(
                    ErrorCode.POLICY_002,
                    f"the policy has {len(errors)} error{'s' if len(errors) != 1 else ''}; "
                    f"first at line {first.line}:{first.column}: {first.message}",
                    offending=first.code,
                    hint="fix the lines marked in the editor (f2 lists the problems)",
                ),
                title="Cannot save",
            )
            return
        if check.diff.empty:
            self.notify("nothing to save: the editor holds the policy in force", title="Policy")
            return
        try:
            report = await policies.replay(text)
        except SymbiError as exc:
            self.console.show_error(exc, title="Cannot replay")
            return
        self.post_message(self.Replayed(text, report, None))
        question = save_question(self.console.display_path(self.policy_path), check.diff, report)
        if not await self.app.push_screen_wait(
            ConfirmDialog("Save the policy?", question, yes="Save", danger=bool(report.changed))
        ):
            return
        self._saving = sha_of(text)
        try:
            result = await policies.save(text)
        except SymbiError as exc:
            self._saving = None
            self.console.show_error(exc, title="Cannot save")
            return
        self.post_message(self.Saved(text, result))

    def on_policy_screen_saved(self, message: Saved) -> None:
        self.in_force = message.text
        result = message.result
        kept = f"; previous version kept at {self.console.display_path(result.previous)}" if result.previous else ""
        self.notify(f"saved and in force (sha256 {result.sha256[:12]}…){kept}", title="Policy", markup=False)
        self._check_now()
        self._show_titles()


def replay_summary(report: PolicyReplay) -> str:
    """``Replayed 120 recorded decisions: 3 would change, 117 unchanged.``"""
    text = f"Replayed {report.total:,} recorded decision{'s' if report.total != 1 else ''}: "
    text += f"{len(report.changed):,} would change, {report.unchanged:,} unchanged"
    if report.errors:
        text += f", {len(report.errors):,} could not be evaluated"
    return text + "."


def save_question(path: str, diff: PolicyDiff, report: PolicyReplay, limit: int = 4, width: int = 72) -> str:
    """What the save confirmation says: the file, the changes, and what the replay found
    (kept short enough for a 24-line terminal; f4 and f5 show everything)."""

    def cut(line: str) -> str:
        return line if len(line) <= width else line[: width - 1] + "…"

    lines = [f"Write {path} and put it in force?", ""]
    summary = diff.summary()
    lines += [cut(line) for line in summary[:limit]]
    if len(summary) > limit:
        lines.append(f"… and {len(summary) - limit} more changes (f4 shows the diff)")
    lines += ["", replay_summary(report)]
    for change in report.changed[:2]:
        lines.append(cut("  " + change.summary))
    if len(report.changed) > 2:
        lines.append(f"  … and {len(report.changed) - 2} more (f5 lists them)")
    return "\n".join(lines)
