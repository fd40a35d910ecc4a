"""The policy editor (screen 5) on a real runtime: validation as you type with marked lines,
the request test panel, the diff, the replay summary, saving with confirmation, and the
refusals (errors in the file, read-only mode)."""

from __future__ import annotations

from console_fixtures import FIXED_POLICY, make_app, ready, runtime_of, seed_audit_async, until
from textual.widgets import OptionList, Static, TabbedContent, TextArea

from console.dialogs import ConfirmDialog
from console.screens import PolicyScreen
from console.widgets import PolicyEditor

EFFECT_LINE = 6  # 0-based row of the first policy's "effect: Allow"
EFFECT_END = len("    effect: Allow")
REQUEST = {"agent_id": "x", "resource_type": "Secret", "resource_path": "shared/db_password", "operation": "Read"}


def notified(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


def policy_app(tmp_path, **kw):
    data = tmp_path / "data"
    data.mkdir(mode=0o700, exist_ok=True)  # the engine refuses a looser data dir
    (data / "access_policies.yaml").write_text(FIXED_POLICY)
    return make_app(tmp_path, **kw)


async def open_policy(pilot) -> tuple[PolicyScreen, PolicyEditor]:
    app = pilot.app
    await ready(app)
    await pilot.press("5")
    screen = app.screen
    assert isinstance(screen, PolicyScreen)
    editor = screen.query_one(PolicyEditor)
    await until(pilot, lambda: screen.loaded and editor.text == FIXED_POLICY, what="the policy file")
    await until(pilot, lambda: screen._checked_text == editor.text, what="the first check")
    return screen, editor


def text_of(widget: Static) -> str:
    return str(widget.render())


def set_effect(editor: PolicyEditor, effect: str) -> None:
    """Replace the first policy's effect, as an edit (posts Changed like typing does)."""
    line = editor.document.get_line(EFFECT_LINE)
    editor.replace(f"    effect: {effect}", (EFFECT_LINE, 0), (EFFECT_LINE, len(line)))


async def test_validates_as_you_type_and_marks_the_line(tmp_path):
    app = policy_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, editor = await open_policy(pilot)
        problems = screen.query_one("#policy-problems", OptionList)
        assert screen.diagnostics == [] and editor.marks == {}
        assert "no problems" in str(problems.get_option_at_index(0).prompt)
        assert editor.border_subtitle.startswith("valid · in force")
        assert not editor.has_focus  # number keys still switch screens

        await pilot.press("e")
        assert editor.has_focus
        editor.move_cursor((EFFECT_LINE, EFFECT_END))
        await pilot.press("e", "d")  # effect: Allowed
        # validation is debounced: on a loaded machine a pass may run between the two keys ('Allowe')
        await until(pilot, lambda: any("'Allowed'" in d.message for d in screen.diagnostics), what="the last pass")
        await until(pilot, lambda: editor.marks == {EFFECT_LINE: "error"}, what="the marked line")
        assert [(d.line, d.column, d.severity) for d in screen.diagnostics] == [(7, 13, "error")]
        await until(
            pilot,
            lambda: "unknown effect 'Allowed'" in str(problems.get_option_at_index(0).prompt),
            what="the problems list",
        )
        assert problems.option_count == 1
        assert editor.border_subtitle.startswith("1 error · modified")
        gutter = editor.render_line(EFFECT_LINE - round(editor.scroll_y)).text
        assert gutter.startswith(" 7● ")

        # choosing the problem puts the cursor at it
        await pilot.press("escape", "f2")
        assert problems.has_focus
        await pilot.press("enter")
        assert editor.has_focus and editor.cursor_location == (EFFECT_LINE, 12)

        editor.move_cursor((EFFECT_LINE, EFFECT_END + 2))
        await pilot.press("backspace", "backspace")
        await until(pilot, lambda: not screen.diagnostics and not editor.marks, what="the mended line")
        assert editor.border_subtitle.startswith("valid · in force")


async def test_request_panel_explains_the_decision(tmp_path):
    app = policy_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, editor = await open_policy(pilot)
        await pilot.press("f3")
        request = screen.query_one("#policy-request", TextArea)
        assert screen.query_one("#policy-side", TabbedContent).active == "test" and request.has_focus
        decision = screen.query_one("#policy-decision", Static)
        await until(pilot, lambda: "Allow by read-shared-secrets" in text_of(decision), what="the decision")
        assert "priority 100" in text_of(decision) and "matched" in text_of(decision)

        # the edited policy decides; the policy in force is named when it differs
        set_effect(editor, "Deny")
        await until(pilot, lambda: "Deny by read-shared-secrets" in text_of(decision), what="the draft's decision")
        assert "in force now: Allow by read-shared-secrets" in text_of(decision)

        # a request no policy matches: the default effect
        request.replace('"operation": "Write"', (4, 2), (4, len(request.document.get_line(4))))
        await until(pilot, lambda: "default effect" in text_of(decision), what="the default")

        # bad JSON is explained, not raised
        request.replace("{not json", (0, 0), request.document.end)
        await until(pilot, lambda: "not valid JSON" in text_of(decision), what="the JSON error")


async def test_diff_replay_and_save_after_confirmation(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    await seed_audit_async(data)  # two recorded secret-read decisions
    app = policy_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, editor = await open_policy(pilot)
        policies = runtime_of(app).policies
        assert policies.evaluate(REQUEST).decision == "Allow"
        set_effect(editor, "Deny")
        await until(pilot, lambda: screen.dirty and screen._checked_text == editor.text, what="the check")

        await pilot.press("f4")
        diff = text_of(screen.query_one("#policy-diff", Static))
        assert "~ read-shared-secrets: effect" in diff and "+    effect: Deny" in diff

        await pilot.press("f5")
        replay = screen.query_one("#policy-replay", Static)
        await until(pilot, lambda: "Replayed" in text_of(replay), what="the replay")
        assert "Replayed 2 recorded decisions: 1 would change, 1 unchanged." in text_of(replay)
        assert "shared/db_password: Allow (read-shared-secrets) -> Deny (read-shared-secrets)" in text_of(replay)

        # ctrl+s asks, showing the diff and the replay; "n" writes nothing
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the save question")
        question = text_of(app.screen.query_one("#dialog-question", Static))
        assert "~ read-shared-secrets: effect" in question and "1 would change" in question
        await pilot.press("n")
        await pilot.pause()
        assert policies.path.read_text() == FIXED_POLICY

        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the save question")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "saved and in force"), what="the save")
        assert policies.path.read_text() == editor.text != FIXED_POLICY
        assert policies.evaluate(REQUEST).decision == "Deny"
        assert (data / "access_policies.yaml.prev").read_text() == FIXED_POLICY
        await until(pilot, lambda: editor.border_subtitle.startswith("valid · in force"), what="clean again")
        assert not notified(app, "changed on disk")  # our own save is not news
        saved = await runtime_of(app).audit.query(types="policy.write", newest_first=True, limit=1)
        assert saved and saved[0].action == "save"


async def test_save_is_refused_with_errors(tmp_path):
    app = policy_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, editor = await open_policy(pilot)
        set_effect(editor, "Allowed")
        await until(pilot, lambda: bool(screen.errors), what="the error")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: notified(app, "POLICY_002"), what="the refusal")
        assert notified(app, "line 7:13")
        assert not isinstance(app.screen, ConfirmDialog)
        assert runtime_of(app).policies.path.read_text() == FIXED_POLICY


async def test_readonly_shows_and_tests_but_cannot_save(tmp_path):
    app = policy_app(tmp_path, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, editor = await open_policy(pilot)
        assert "read-only" in editor.border_subtitle
        shown = {b.binding.id for b in screen.active_bindings.values() if b.binding.show}
        assert "policy.save" not in shown and "policy.test" in shown
        set_effect(editor, "Deny")
        await until(pilot, lambda: screen.dirty and screen._checked_text == editor.text, what="the check")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: notified(app, "CONSOLE_001"), what="the refusal")
        assert runtime_of(app).policies.path.read_text() == FIXED_POLICY


async def test_a_change_on_disk_reloads_an_unedited_editor(tmp_path):
    app = policy_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, editor = await open_policy(pilot)
        changed = FIXED_POLICY.replace("priority: 50", "priority: 60")
        runtime_of(app).policies.path.write_text(changed)
        await until(pilot, lambda: editor.text == changed, timeout=10, what="the reload from disk")
        assert not screen.dirty


async def test_revert_discards_edits_after_asking(tmp_path):
    app = policy_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, editor = await open_policy(pilot)
        set_effect(editor, "Deny")
        await until(pilot, lambda: screen.dirty, what="the edit")
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the revert question")
        await pilot.press("y")
        await until(pilot, lambda: editor.text == FIXED_POLICY and not screen.dirty, what="the policy in force")
