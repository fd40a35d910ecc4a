"""The policy editor (screen 5): validation as you type with marked lines, the request test panel,
the diff, the replay summary, saving with confirmation, and the refusals (errors in the file,
read-only mode, an engine that fails).

The screen runs over the scripted engine (:class:`fake_scenarios.ScenarioFake`): drafts are
checked with the engine's real policy parser and diff, the test panel's decisions and the replay
are scripted, and the engine's reload events are published by the fake. One test saves through
the real engine, end to end."""

from __future__ import annotations

from console_fixtures import FIXED_POLICY, make_app, make_fake_app, ready, runtime_of, seed_audit_async, until
from fake_scenarios import ScenarioFake, sha_of
from textual.widgets import OptionList, Static, TabbedContent, TextArea

from console.dialogs import ConfirmDialog
from console.screens import PolicyScreen
from console.widgets import PolicyEditor
from engine.api import PolicyDecision, PolicyReplay, PolicyReplayChange
from engine.errors import ErrorCode, SymbiError

EFFECT_LINE = 6  # 0-based row of the first policy's "effect: Allow"
EFFECT_END = len("    effect: Allow")
REQUEST = {"agent_id": "x", "resource_type": "Secret", "resource_path": "shared/db_password", "operation": "Read"}
SHOWN_REQUEST = {  # the request the test panel starts with
    "agent_id": "demo-agent",
    "resource_type": "Secret",
    "resource_path": "shared/db_password",
    "operation": "Read",
}
CONDITIONS = (
    "resource_type is Secret",
    "operation Read in [Read]",
    "resource_path 'shared/db_password' matches 'shared/**'",
)


def notified(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


def effect_of(text: str) -> str:
    return text.splitlines()[EFFECT_LINE].split(":", 1)[1].strip()


def decide(fake: ScenarioFake):
    """The engine's answers for the fixed policy (as the real engine words them): a secret read
    under shared/ is decided by read-shared-secrets with the effect of the text decided against;
    anything else falls to the default effect."""

    def answer(request: dict, draft: str | None) -> PolicyDecision:
        text = draft if draft is not None else fake.policy_text
        if request.get("resource_type") != "Secret" or request.get("operation") != "Read":
            return PolicyDecision(
                "Deny",
                None,
                f"no policy matched {request.get('operation')} on Secret 'shared/db_password'; default effect Deny",
                default=True,
            )
        effect = effect_of(text)
        if effect not in ("Allow", "Deny", "Audit", "RequireApproval"):  # the engine cannot load such a draft
            raise SymbiError(ErrorCode.POLICY_002, f"unknown effect {effect!r}", offending="effect")
        return PolicyDecision(
            effect,
            "read-shared-secrets",
            f"{effect} by policy 'read-shared-secrets' (priority 100)",
            CONDITIONS,
            priority=100,
        )

    return answer


def policy_fake() -> ScenarioFake:
    fake = ScenarioFake(policy_text=FIXED_POLICY)
    fake.decide = decide(fake)
    return fake


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


async def test_validates_as_you_type_and_marks_the_line():
    fake = policy_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, editor = await open_policy(pilot)
        assert editor.border_title == "~/symbi-data/access_policies.yaml"
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
        assert fake.called("policies.validate")[-1] == (editor.text,)  # the engine checked the edited text
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
        assert fake.called("policies.save") == []


async def test_request_panel_explains_the_decision():
    fake = policy_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, editor = await open_policy(pilot)
        await pilot.press("f3")
        request = screen.query_one("#policy-request", TextArea)
        assert screen.query_one("#policy-side", TabbedContent).active == "test" and request.has_focus
        decision = screen.query_one("#policy-decision", Static)
        await until(pilot, lambda: "Allow by read-shared-secrets" in text_of(decision), what="the decision")
        assert "priority 100" in text_of(decision) and "matched" in text_of(decision)
        assert "resource_path 'shared/db_password' matches 'shared/**'" in text_of(decision)
        # the request shown was asked of the engine, against the editor's (valid) text
        assert (SHOWN_REQUEST, FIXED_POLICY) in fake.called("policies.test")

        # the edited policy decides; the policy in force is named when it differs
        set_effect(editor, "Deny")
        await until(pilot, lambda: "Deny by read-shared-secrets" in text_of(decision), what="the draft's decision")
        assert "in force now: Allow by read-shared-secrets" in text_of(decision)
        assert (SHOWN_REQUEST, editor.text) in fake.called("policies.test")
        assert (SHOWN_REQUEST, None) in fake.called("policies.test")  # and the policy in force

        # a request no policy matches: the default effect
        request.replace('"operation": "Write"', (4, 2), (4, len(request.document.get_line(4))))
        await until(pilot, lambda: "default effect" in text_of(decision), what="the default")

        # bad JSON is explained, not raised, and never reaches the engine
        asked = len(fake.called("policies.test"))
        request.replace("{not json", (0, 0), request.document.end)
        await until(pilot, lambda: "not valid JSON" in text_of(decision), what="the JSON error")
        assert len(fake.called("policies.test")) == asked

        # an engine error is shown in the panel with its code
        fake.fail("policies.test", SymbiError(ErrorCode.POLICY_004, "the request names no operation"))
        request.replace('{"resource_type": "Secret"}', (0, 0), request.document.end)
        await until(pilot, lambda: "POLICY_004: the request names no operation" in text_of(decision), what="the error")

        # with errors in the editor, the policy in force decides and the panel says so
        set_effect(editor, "Allowed")
        request.replace(
            '{"resource_type": "Secret", "operation": "Read", "resource_path": "shared/db_password"}',
            (0, 0),
            request.document.end,
        )
        await until(pilot, lambda: "this is the policy in force" in text_of(decision), what="the fallback")
        assert "Allow by read-shared-secrets" in text_of(decision)
        assert fake.called("policies.test")[-1][1] is None


def replay_of_one_change() -> PolicyReplay:
    """What the engine's replay says of the seeded trail's two secret reads when the first policy denies."""
    request = {
        "agent_id": "billing-bot",
        "resource_type": "Secret",
        "resource_path": "shared/db_password",
        "operation": "Read",
    }
    now = PolicyDecision("Deny", "read-shared-secrets", "Deny by policy 'read-shared-secrets' (priority 100)")
    change = PolicyReplayChange(
        seq=4,
        at=None,
        agent="billing-bot",
        request=request,
        recorded="Allow",
        recorded_policy="read-shared-secrets",
        now=now,
        summary="#4 billing-bot: Read Secret shared/db_password: Allow (read-shared-secrets) -> Deny (read-shared-secrets)",
    )
    return PolicyReplay(total=2, unchanged=1, changed=(change,))


async def test_diff_replay_and_save_after_confirmation():
    fake = policy_fake()
    fake.replay = replay_of_one_change()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, editor = await open_policy(pilot)
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
        assert fake.called("policies.replay") == [(editor.text,)]

        # ctrl+s asks, showing the diff and the replay; "n" writes nothing
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the save question")
        question = text_of(app.screen.query_one("#dialog-question", Static))
        assert "Write ~/symbi-data/access_policies.yaml and put it in force?" in question
        assert "~ read-shared-secrets: effect" in question and "1 would change" in question
        assert "#4 billing-bot: Read Secret shared/db_password: Allow (read-shared-se…" in question  # cut at 72
        await pilot.press("n")
        await pilot.pause()
        assert fake.called("policies.save") == [] and fake.policy_text == FIXED_POLICY

        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the save question")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "saved and in force"), what="the save")
        assert fake.called("policies.save") == [(editor.text,)]
        assert fake.policy_text == editor.text != FIXED_POLICY
        assert notified(app, f"saved and in force (sha256 {sha_of(editor.text)[:12]}…)")
        assert notified(app, "previous version kept at ~/symbi-data/access_policies.yaml.prev")
        await until(pilot, lambda: editor.border_subtitle.startswith("valid · in force"), what="clean again")
        await pilot.pause()
        assert not notified(app, "changed on disk")  # the engine's reload of our own save is not news


async def test_a_failed_save_or_replay_is_shown_and_the_edits_are_kept():
    fake = policy_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, editor = await open_policy(pilot)
        set_effect(editor, "Deny")
        await until(pilot, lambda: screen.dirty and screen._checked_text == editor.text, what="the check")
        edited = editor.text

        # the replay cannot read the trail: said in the panel, with the code
        fake.fail("policies.replay", SymbiError(ErrorCode.AUDIT_001, "the audit trail is unavailable"))
        await pilot.press("f5")
        replay = screen.query_one("#policy-replay", Static)
        await until(pilot, lambda: "AUDIT_001: the audit trail is unavailable" in text_of(replay), what="the error")

        # the write fails: code, message and hint in a notification; nothing in force changed
        fake.fail(
            "policies.save",
            SymbiError(
                ErrorCode.POLICY_003,
                "could not write the policy file",
                offending="access_policies.yaml",
                hint="check the data dir's free space",
            ),
        )
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the save question")
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "POLICY_003: could not write the policy file"), what="the failure")
        assert notified(app, "(input: 'access_policies.yaml')") and notified(
            app, "Hint: check the data dir's free space"
        )
        assert not notified(app, "saved and in force")
        assert fake.policy_text == FIXED_POLICY
        assert editor.text == edited and screen.dirty
        assert editor.border_subtitle.startswith("valid · modified")
        assert screen._saving is None  # a later reload of the file is news again


async def test_save_is_refused_with_errors():
    fake = policy_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, editor = await open_policy(pilot)
        set_effect(editor, "Allowed")
        await until(pilot, lambda: bool(screen.errors), what="the error")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: notified(app, "POLICY_002"), what="the refusal")
        assert notified(app, "line 7:13")
        assert notified(app, "Hint: fix the lines marked in the editor (f2 lists the problems)")
        assert not isinstance(app.screen, ConfirmDialog)
        assert fake.called("policies.save") == [] and fake.called("policies.replay") == []
        assert fake.policy_text == FIXED_POLICY

        # and f5 will not replay a broken draft either
        await pilot.press("f5")
        replay = screen.query_one("#policy-replay", Static)
        assert "fix the errors first" in text_of(replay)
        assert fake.called("policies.replay") == []


async def test_readonly_shows_and_tests_but_cannot_save():
    fake = policy_fake()
    app = make_fake_app(fake, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, editor = await open_policy(pilot)
        assert "read-only" in editor.border_subtitle
        shown = {b.binding.id for b in screen.active_bindings.values() if b.binding.show}
        assert "policy.save" not in shown and "policy.test" in shown
        set_effect(editor, "Deny")
        await until(pilot, lambda: screen.dirty and screen._checked_text == editor.text, what="the check")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: notified(app, "CONSOLE_001"), what="the refusal")
        assert notified(app, "policies.save changes engine state and this engine connection is read-only")
        assert not isinstance(app.screen, ConfirmDialog)
        assert fake.called("policies.save") == [] and fake.policy_text == FIXED_POLICY

        # testing a request still works
        await pilot.press("f3")
        decision = screen.query_one("#policy-decision", Static)
        await until(pilot, lambda: "Deny by read-shared-secrets" in text_of(decision), what="the decision")


async def test_a_change_on_disk_reloads_an_unedited_editor():
    fake = policy_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, editor = await open_policy(pilot)
        changed = FIXED_POLICY.replace("priority: 50", "priority: 60")
        fake.policy_reloaded(changed)  # the engine's watcher saw the file change
        await until(pilot, lambda: editor.text == changed, what="the reload from disk")
        assert not screen.dirty

        # with edits, the editor keeps them and says how to load the new file
        set_effect(editor, "Deny")
        await until(pilot, lambda: screen.dirty, what="the edit")
        fake.policy_reloaded(changed.replace("priority: 10", "priority: 11"))
        await until(pilot, lambda: notified(app, "the policy file changed on disk; ctrl+o loads it"), what="the notice")
        assert effect_of(editor.text) == "Deny"

        # a broken file on disk: the last good policy stays, and the screen says why
        fake.policy_rejected("line 3: mapping values are not allowed here")
        await until(pilot, lambda: notified(app, "the last good policy stays in force"), what="the rejection")
        assert notified(app, "line 3: mapping values are not allowed here")


async def test_revert_discards_edits_after_asking():
    fake = policy_fake()
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, editor = await open_policy(pilot)
        set_effect(editor, "Deny")
        await until(pilot, lambda: screen.dirty, what="the edit")
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the revert question")
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen, what="the question to close")
        assert screen.dirty and effect_of(editor.text) == "Deny"
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the revert question")
        await pilot.press("y")
        await until(pilot, lambda: editor.text == FIXED_POLICY and not screen.dirty, what="the policy in force")
        assert fake.called("policies.save") == []


# -- end to end ---------------------------------------------------------------------------------


def policy_app(tmp_path, **kw):
    data = tmp_path / "data"
    data.mkdir(mode=0o700, exist_ok=True)  # the engine refuses a looser data dir
    (data / "access_policies.yaml").write_text(FIXED_POLICY)
    return make_app(tmp_path, **kw)


async def test_replay_and_save_end_to_end(tmp_path):
    """Stays on the real engine: the replay reads decisions really recorded in the audit trail, and
    the save is the engine's own (atomic write, previous version kept, the new policy in force for
    the next decision, the save audited, its own reload not news); the fake only scripts these.
    (The screen's diff and replay panels and the "no" answer are tested above.)"""
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

        # ctrl+s asks, showing the diff and what the replay of the recorded decisions found
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the save question")
        question = text_of(app.screen.query_one("#dialog-question", Static))
        assert "~ read-shared-secrets: effect" in question
        assert "Replayed 2 recorded decisions: 1 would change, 1 unchanged." in question
        assert "#4 billing-bot: Read Secret shared/db_password: Allow (read-shared-se…" in question  # cut at 72
        assert policies.path.read_text() == FIXED_POLICY
        await pilot.press("y")
        await until(pilot, lambda: notified(app, "saved and in force"), what="the save")
        assert policies.path.read_text() == editor.text != FIXED_POLICY
        assert policies.evaluate(REQUEST).decision == "Deny"
        assert (data / "access_policies.yaml.prev").read_text() == FIXED_POLICY
        await until(pilot, lambda: editor.border_subtitle.startswith("valid · in force"), what="clean again")
        assert not notified(app, "changed on disk")  # our own save is not news
        saved = await runtime_of(app).audit.query(types="policy.write", newest_first=True, limit=1)
        assert saved and saved[0].action == "save"
