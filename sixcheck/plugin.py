"""The pytest plugin: profile in, test items and reports out. Thin on purpose.

Everything here is about pytest: options, turning a profile into parametrised items, running the
probe plan once per session, and handing evidence to the reports. The measuring lives in
`sixcheck.probes`, the judging in `checks/`, the writing of results in `sixcheck.report`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
import pytest
from _pytest._code.code import ReprFileLocation, TerminalRepr  # no public home for these

from . import emptyrun, locate, runtime
from .check import TARGETS_ATTR
from .probes.base import (
    Observation,
    ProbeContext,
    ProbeFailed,
    ProbeRequest,
    ProbeUnavailable,
    has_raw_sockets,
)
from .probes.plan import StagedPlan, run_plan
from .report import INTERRUPTED_NOTE, Results, evidence_html, message_of, render_evidence
from .schema import AREAS, LoadedProfile, ProfileError, list_profiles, load
from .secrets import known as secrets_known
from .secrets import redact

if TYPE_CHECKING:  # loaded only when something failed (see _diagnose)
    from .diagnosis import Cause

PROFILE_KEY = pytest.StashKey[LoadedProfile]()
RESULTS_KEY = pytest.StashKey[Results]()
PLAN_KEY = pytest.StashKey[list[ProbeRequest[Any]]]()
EVIDENCE_KEY = pytest.StashKey[list[dict[str, Any]]]()
SUITE_PROPERTY_KEY = pytest.StashKey[Callable[[str, object], None]]()
NA_MARK = "sixcheck_na"
CHECKS_DIR = locate.checks_dir()
TALLY_KEY = pytest.StashKey[emptyrun.Tally]()
STAGED_KEY = pytest.StashKey[StagedPlan]()
#: Keys the plugin adds to every observation's evidence beside the observation's own fields. An
#: observation field of one of these names would overwrite it (RouteDecision's route type once
#: replaced `kind`, its class); tests/test_evidence_keys.py keeps every Observation clear of them.
ADDED_KEYS = ("kind",)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sixcheck", "sixcheck: IPv6 site checks")
    group.addoption(
        "--profile", metavar="NAME|PATH", help="site profile: a name in profiles/ or a path"
    )
    group.addoption(
        "--list-profiles", action="store_true", help="list the shipped profiles and exit"
    )
    group.addoption(
        "--report-dir",
        metavar="DIR",
        default="reports",
        help="where reports go (default: reports/)",
    )
    group.addoption("--no-report", action="store_true", help="write neither HTML nor JSON report")
    group.addoption("--json-file", metavar="PATH", help="write the JSON results here instead")
    group.addoption(
        "--baseline",
        metavar="FILE|latest",
        help="compare with an earlier run's JSON results (regressions, fixed, ...); 'latest' "
        "takes the newest run of this profile in --report-dir",
    )
    group.addoption(
        "--fail-on",
        choices=("failures", "regressions"),
        default="failures",
        help="what makes the run exit 1: any failing check (default), or only failures the "
        "baseline did not have (needs --baseline)",
    )
    group.addoption(
        "--prometheus",
        metavar="FILE",
        help="also write a node_exporter textfile (*.prom) with one gauge per check",
    )
    group.addoption(
        "--keep",
        metavar="N",
        type=int,
        default=30,
        help="keep the newest N reports of each profile in --report-dir and index them in "
        "index.html (default 30; 0 keeps everything)",
    )
    parser.addini("sixcheck_profile_dirs", "extra folders searched for profile names", type="paths")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Undo pytest taking `--profile /path/site.yaml` for a test path when it chose the rootdir.

    pytest picks rootdir and ini file before plugins' options are known, so the profile path of
    `pytest --profile /etc/sixcheck/site.yaml` was read as a positional test path: the rootdir
    became /etc/sixcheck, the project's ini was lost and check ids changed with the profile's
    location. Recompute the setup without it, as if `--profile=PATH` had been written.
    """
    ns = early_config.known_args_namespace
    if getattr(ns, "profile", None):
        runtime.confine(early_config.pluginmanager)  # before conftests, checks and scapy load
    if not getattr(ns, "profile", None) or ns.rootdir or ns.inifilename:
        return
    import inspect

    from _pytest.config.findpaths import determine_setup

    kwargs: dict[str, Any] = {
        "inifile": None,
        "override_ini": ns.override_ini,
        "args": list(ns.file_or_dir or []),
        "rootdir_cmd_arg": None,
        "invocation_dir": early_config.invocation_params.dir,
    }
    accepted = inspect.signature(determine_setup).parameters
    setup = determine_setup(**{k: v for k, v in kwargs.items() if k in accepted})
    rootpath, inipath, inicfg = setup[0], setup[1], setup[2]
    if rootpath == early_config.rootpath and inipath == early_config.inipath:
        return
    # no public setter exists for these
    early_config._rootpath = rootpath
    early_config._inipath = inipath
    early_config._inicfg = inicfg
    early_config._inicache.clear()
    args[:] = [*early_config.getini("addopts"), *args]
    ns.confcutdir = str(inipath.parent if inipath else rootpath)


def _profile_dirs(config: pytest.Config) -> list[Path]:
    dirs = [Path(p) for p in config.getini("sixcheck_profile_dirs")]
    return [*dirs, config.rootpath / "profiles"]


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("list_profiles"):
        return None
    for name, path, desc in list_profiles(_profile_dirs(config)):
        print(f"{name:<16} {desc}  ({path})")
    return 0


def _report_stem(name: str, started: datetime, report_dir: Path, reserve: bool) -> str:
    stem = f"{name}-{started.strftime('%Y%m%dT%H%M%SZ')}"
    # two runs in the same second (cron overlap) must not overwrite each other
    n = 1
    candidate = stem
    while True:
        html = report_dir / f"{candidate}.html"
        if not (report_dir / f"{candidate}.json").exists():
            if not reserve:
                if not html.exists():
                    return candidate
            else:
                try:  # reserve the name: another run's check-then-write could race ours
                    os.close(os.open(html, os.O_CREAT | os.O_EXCL, 0o644))
                    return candidate
                except FileExistsError:
                    pass
        n += 1
        candidate = f"{stem}-{n}"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{NA_MARK}: internal: nothing to check for this profile")
    name = config.getoption("profile")
    if not name:
        return
    try:
        loaded = load(name, _profile_dirs(config))
    except ProfileError as exc:
        raise pytest.UsageError(f"bad profile:\n{exc}") from None
    config.stash[PROFILE_KEY] = loaded
    config.stash[STAGED_KEY] = StagedPlan(_context(loaded))
    if config.args_source != pytest.Config.ArgsSource.ARGS and CHECKS_DIR.is_dir():
        # `pytest --profile X` from anywhere runs sixcheck's checks, never the folder it stands in
        config.args = [str(CHECKS_DIR)]
    started = datetime.now(UTC)
    base = _baseline(config, loaded)
    json_file = config.getoption("json_file")
    html_path = None
    # --collect-only probes nothing, so it reports nothing (and stays fast: no vantage read)
    reports_off = config.getoption("no_report") or config.option.collectonly
    if problems := runtime.cannot_write(runtime.outputs(config, reports_off)):
        raise pytest.UsageError("cannot save this run's results:\n" + "\n".join(problems))
    if not reports_off:
        report_dir = Path(config.getoption("report_dir"))
        try:
            report_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise pytest.UsageError(f"--report-dir {report_dir}: {exc.strerror}") from None
        # no HTML without pytest-html (`-p no:html`): then the JSON results are the report
        ours = not config.getoption("htmlpath", None) and config.pluginmanager.hasplugin("html")
        stem = _report_stem(loaded.name, started, report_dir, reserve=ours)
        json_file = json_file or str(report_dir / f"{stem}.json")
        if ours:
            html_path = report_dir / f"{stem}.html"
            config.option.htmlpath = str(html_path)
            config.option.self_contained_html = True
    results = Results(loaded, started, Path(json_file) if json_file else None, html_path)
    results.fail_on = config.getoption("fail_on")
    results.baseline, results.baseline_path, results.baseline_note = base
    config.stash[RESULTS_KEY] = results
    rotate_dir = None if reports_off else Path(config.getoption("report_dir"))
    keep = config.getoption("keep")
    if keep < 0:
        raise pytest.UsageError(f"--keep {keep}: give a number of reports, 0 to keep all")
    prom = config.getoption("prometheus")
    config.pluginmanager.register(
        _RunHooks(results, rotate_dir, keep, Path(prom) if prom else None), "sixcheck-run"
    )


def _baseline(
    config: pytest.Config, loaded: LoadedProfile
) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """Load `--baseline` now, so a bad file stops the run (exit 4) before anything is probed.

    Returns (results document, its path, a note when there is nothing to compare with)."""
    value = config.getoption("baseline")
    if not value:
        if config.getoption("fail_on") == "regressions":
            raise pytest.UsageError(
                "--fail-on regressions needs --baseline FILE (the run to compare with)"
            )
        return None, None, None
    path = Path(value)
    from . import baseline as bl  # only a run with --baseline pays for its import

    if value == "latest" and not path.exists():
        from . import history

        report_dir = config.getoption("report_dir")
        found = history.latest(Path(report_dir), loaded.name)
        if found is None:
            note = (
                f"no earlier run of {loaded.name} in {report_dir}: nothing to compare with, "
                "every failure counts"
            )
            return None, None, note
        path = found
    try:
        return bl.load(path), str(path), None
    except bl.BaselineError as exc:
        raise pytest.UsageError(f"--baseline {exc}") from None


def _add_metadata(config: pytest.Config, results: Results) -> None:
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:  # pytest-html not installed: JSON still carries the vantage
        return
    meta = config.stash.get(metadata_key, None)
    if meta is None:
        return
    for k in [k for k in meta if k not in ("Python", "Platform")]:
        del meta[k]
    meta.update(results.header())


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    loaded = config.stash.get(PROFILE_KEY, None)
    if loaded is None:
        return None
    areas = ", ".join(loaded.profile.areas())
    return [
        f"sixcheck profile: {loaded.name} ({loaded.path}, sha256 {loaded.sha256[:12]}) areas: {areas}"
    ]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave out the check modules (`checks/test_AREA.py`) of areas the profile does not have.

    Their checks would all be deselected as not applicable, after pytest imported them and the
    probe modules behind them (a sysctl-only profile: 8 of 9 modules, a sixth of its start-up).
    Paths named on the command line are collected as asked."""
    loaded = config.stash.get(PROFILE_KEY, None)
    if loaded is None or config.args_source == pytest.Config.ArgsSource.ARGS:
        return None
    area = collection_path.stem.removeprefix("test_")
    if (
        collection_path.suffix == ".py"
        and collection_path.stem.startswith("test_")
        and area in AREAS
        and getattr(loaded.profile, area, None) is None
        and collection_path.parent == CHECKS_DIR
    ):
        return True
    return None


def _area_of(module: Any) -> str | None:
    return getattr(module, "AREA", None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    fn = getattr(metafunc.function, TARGETS_ATTR, None)
    if fn is None:
        return
    loaded = metafunc.config.stash.get(PROFILE_KEY, None)
    area = _area_of(metafunc.module)
    if loaded is None or area is None or getattr(loaded.profile, area, None) is None:
        why = "no profile" if loaded is None else f"profile has no {area} area"
        metafunc.parametrize(
            "target", [pytest.param(None, marks=pytest.mark.sixcheck_na(why))], ids=["na"]
        )
        return
    found = list(fn(loaded.profile))
    if not found:
        metafunc.parametrize(
            "target", [pytest.param(None, marks=pytest.mark.sixcheck_na("no target"))], ids=["na"]
        )
        return
    ids = [t.id for t in found]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise pytest.UsageError(f"{metafunc.function.__name__}: duplicate targets {sorted(dupes)}")
    metafunc.parametrize("target", found, ids=ids)
    staged = metafunc.config.stash.get(STAGED_KEY, None)
    if staged is not None and _may_start_early(metafunc.config):
        staged.start_early(req for t in found for req in t.probes())


def _may_start_early(config: pytest.Config) -> bool:
    """Windows start while pytest collects only when no option can drop their checks later
    (a deselected check's RS would be a packet the run did not need)."""
    drops = ("collectonly", "keyword", "markexpr", "deselect", "lf", "setuponly", "setupplan")
    return not any(config.getoption(name, None) for name in drops)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    is_check = [_is_check(i) for i in items]
    if any(is_check) and PROFILE_KEY not in config.stash:
        raise pytest.UsageError(
            "checks need a site profile: pytest --profile NAME (see --list-profiles)"
        )
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (drop if item.get_closest_marker(NA_MARK) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _is_check(item: pytest.Item) -> bool:
    return getattr(getattr(item, "function", None), TARGETS_ATTR, None) is not None


def pytest_itemcollected(item: pytest.Item) -> None:
    if _is_check(item):
        tally = item.config.stash.setdefault(TALLY_KEY, emptyrun.Tally())
        tally.seen(not_applicable=item.get_closest_marker(NA_MARK) is not None)


def _nothing_checked(session: pytest.Session) -> None:
    """Exit 4, saying why, when a run with a profile has no check left (see `emptyrun`)."""
    config = session.config
    loaded = config.stash.get(PROFILE_KEY, None)
    if loaded is None or session.testsfailed:  # collection errors speak for themselves
        return
    remaining = sum(_is_check(i) for i in session.items)
    explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    selection = emptyrun.Selection(
        CHECKS_DIR,
        tuple(config.args) if explicit else (),
        config.option.keyword,
        config.option.markexpr,
        tuple(config.getoption("deselect", None) or ()),
    )
    tally = config.stash.get(TALLY_KEY, emptyrun.Tally())
    areas = loaded.profile.areas()
    why = emptyrun.why_nothing(tally, remaining, loaded.name, areas, selection)
    if why:
        raise pytest.UsageError(why)


def pytest_collection_finish(session: pytest.Session) -> None:
    _nothing_checked(session)
    if PROFILE_KEY in session.config.stash:
        runtime.settle()
    requests: list[ProbeRequest[Any]] = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("target") if callspec else None
        if target is not None and hasattr(target, "probes"):
            requests.extend(target.probes())
    session.config.stash[PLAN_KEY] = requests


def _context(loaded: LoadedProfile) -> ProbeContext:
    t = loaded.profile.timeouts
    return ProbeContext(
        probe_timeout=t.probe, ra_listen=t.ra_listen, run_timeout=t.run, has_raw=has_raw_sockets()
    )


@pytest.fixture(scope="session")
def sixcheck_profile(pytestconfig: pytest.Config) -> LoadedProfile:
    """The loaded profile of this run."""
    loaded = pytestconfig.stash.get(PROFILE_KEY, None)
    if loaded is None:
        pytest.skip("no --profile given")
    return loaded


@pytest.fixture(scope="session")
def profile(sixcheck_profile: LoadedProfile) -> Any:
    """The validated Profile object the checks read their expectations from."""
    return sixcheck_profile.profile


@pytest.fixture(scope="session")
def _sixcheck_observations(
    request: pytest.FixtureRequest, pytestconfig: pytest.Config, sixcheck_profile: LoadedProfile
) -> dict[ProbeRequest[Any], Observation]:
    """Every probe of the run, run once, together, under one deadline."""
    plan = pytestconfig.stash.get(PLAN_KEY, [])
    results = pytestconfig.stash.get(RESULTS_KEY, None)
    staged = pytestconfig.stash[STAGED_KEY]  # stashed with the profile (pytest_configure)
    try:
        running = staged.start(plan)
        if results is not None:
            # what the end of the run needs, done while the probes wait for their answers (on a
            # healthy site the RA window's idle half second): the vantage read and late imports
            running.started.wait()
            results.prefetch()
        observations, took = running.wait()
    except KeyboardInterrupt:
        # Ctrl-C in the plan: stop as pytest does between two items (exit 2), so the traceback
        # it formats is its loop's, not the whole fixture stack's (~0.5 s of reading sources)
        request.session.shouldstop = INTERRUPTED_NOTE
        pytest.skip(INTERRUPTED_NOTE)
    if results is not None:
        results.plan_seconds = took
        results.plan_kinds = dict(running.timings)
        results.plan_size = len(set(plan))
    return observations


@pytest.fixture(scope="session", autouse=True)
def _sixcheck_suite_properties(request: pytest.FixtureRequest) -> None:
    """Keep JUnit's suite-level property recorder, for the cause count written at the end."""
    if RESULTS_KEY not in request.config.stash:
        return
    try:
        record = request.getfixturevalue("record_testsuite_property")
    except pytest.FixtureLookupError:  # -p no:junitxml
        return
    request.config.stash[SUITE_PROPERTY_KEY] = record


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Notes a check wants in its report entry (expected values, the rule it applied)."""
    notes: dict[str, Any] = {}
    request.node.stash.setdefault(EVIDENCE_KEY, []).append({"notes": notes})
    return notes


@pytest.fixture
def observe(
    request: pytest.FixtureRequest,
    sixcheck_profile: LoadedProfile,
    _sixcheck_observations: dict[ProbeRequest[Any], Observation],
) -> Callable[[ProbeRequest[Any]], Any]:
    """Give a check the observation for one of its requests, recording it as evidence.

    A probe that cannot run here skips the check with the reason; a probe that broke fails it with
    "could not tell", so an error never reads as a pass.
    """

    def get(req: ProbeRequest[Any]) -> Any:
        obs = _sixcheck_observations.get(req)
        if obs is None:  # not declared by the target: run it now rather than guess
            extra, _ = run_plan([req], _context(sixcheck_profile))
            obs = extra[req]
            _sixcheck_observations[req] = obs
        request.node.stash.setdefault(EVIDENCE_KEY, []).append(
            {
                "request": req.describe(),
                "observation": observation_record(obs),
            }
        )
        if isinstance(obs, ProbeUnavailable):
            pytest.skip(obs.error or "probe unavailable")
        if isinstance(obs, ProbeFailed):
            pytest.fail(f"could not tell: {obs.error}", pytrace=False)
        return obs

    return get


def observation_record(obs: Observation) -> dict[str, Any]:
    """An observation as the evidence carries it: `kind`, its class (what every reader of results,
    from diagnosis to `--baseline`, tells records apart by), then its own fields."""
    return {"kind": type(obs).__name__, **obs.evidence()}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    # TestReport has no slot for plugin data; pytest's own docs set extra attributes like this
    report.sixcheck_area = _area_of(getattr(item, "module", None))  # type: ignore[attr-defined]
    report.sixcheck_id = locate.check_id(item.nodeid, item.path)  # type: ignore[attr-defined]
    if (
        report.failed
        and call.excinfo is not None
        and call.excinfo.errisinstance(AssertionError)
        and getattr(getattr(item, "function", None), TARGETS_ATTR, None) is not None
    ):
        # a check's message already says expected, found and the fix; pytest's assert
        # introspection and source listing would only bury it
        crash = getattr(report.longrepr, "reprcrash", None)
        report.longrepr = _CheckFailure(message_of(report), crash)
    if secrets_known():
        _redact_report(report)
    ev = item.stash.get(EVIDENCE_KEY, None)
    attach = report.when == "call" or (report.when == "setup" and not report.passed)
    if not ev or not attach:
        return
    report.sixcheck_evidence = ev  # type: ignore[attr-defined]  # plugin data, as above
    text = render_evidence(ev, as_text=True)
    item.user_properties.append(("sixcheck_evidence", text))
    try:
        from pytest_html import extras
    except ImportError:
        return
    # pytest-html reads `extras` off the report; TestReport does not declare it
    report.extras = [*getattr(report, "extras", []), extras.html(evidence_html(text))]  # type: ignore[attr-defined]


def _redact_report(report: pytest.TestReport) -> None:
    """Scrub secrets from what pytest itself shows and writes (terminal, JUnit, captured output)."""
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        if isinstance(report.longrepr, _CheckFailure):
            report.longrepr = _CheckFailure(
                redact(report.longrepr.message), report.longrepr.reprcrash
            )
        else:
            text = str(report.longrepr)
            if redact(text) != text:
                report.longrepr = redact(text)
    elif isinstance(report.longrepr, tuple):
        path, line, msg = report.longrepr
        report.longrepr = (path, line, redact(msg))
    report.sections = [(name, redact(content)) for name, content in report.sections]


def _diagnose(doc: dict[str, Any]) -> list[Cause]:
    """The run's causes; the diagnosis module loads only for a run in which something failed."""
    from . import diagnosis

    return diagnosis.diagnose(doc)


class _CheckFailure(TerminalRepr):
    """A failed check shown as its message alone (the short summary line keeps it too)."""

    def __init__(self, message: str, crash: ReprFileLocation | None) -> None:
        self.message = message
        self.reprcrash = ReprFileLocation(
            crash.path if crash else "", crash.lineno if crash else 0, message
        )

    def toterminal(self, tw: Any) -> None:
        for line in self.message.splitlines():
            tw.line(line, red=True, bold=True)


class _RunHooks:
    """Hooks that need this run's Results; registered only when a profile is given."""

    def __init__(
        self, results: Results, report_dir: Path | None, keep: int, prometheus_file: Path | None
    ) -> None:
        self.results = results
        self.report_dir = report_dir
        self.keep = keep
        self.prometheus_file = prometheus_file
        self.fresh: dict[str, dict[str, Any]] = {}  # this run's results, for the index

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.results.t0 = time.monotonic()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.add(report)

    @pytest.hookimpl(optionalhook=True)  # pytest-html may be disabled: -p no:html
    def pytest_html_report_title(self, report: Any) -> None:
        report.title = f"sixcheck: {self.results.loaded.name}"

    @pytest.hookimpl(optionalhook=True)  # pytest-html may be disabled: -p no:html
    def pytest_html_results_summary(self, prefix: list[str]) -> None:
        prefix.extend(self.results.html_summary())

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # runs before pytest-html's (trylast) final write and JUnit's, so the HTML shows the
        # comparison and the diagnosis, and the JUnit XML the cause count
        if session.config.option.collectonly:
            return  # nothing ran: no results to write
        # pytest-html took the metadata dict at its session start and renders it after this
        # hook; the vantage is read late (during the probe plan, or here), never before the plan
        if int(exitstatus) == pytest.ExitCode.INTERRUPTED:
            self.results.skip_vantage("not read: the run was interrupted (Ctrl-C)")
        _add_metadata(session.config, self.results)
        cmp = self.results.comparison()
        if (
            self.results.fail_on == "regressions"
            and cmp is not None
            and exitstatus == pytest.ExitCode.TESTS_FAILED
            and not cmp.unknown_failures()
        ):
            session.exitstatus = pytest.ExitCode.OK  # only known failures: tolerated
        doc = self.results.finish(int(session.exitstatus), _diagnose)
        if self.results.json_path is not None:
            self.fresh = {self.results.json_path.stem: doc}
        record = session.config.stash.get(SUITE_PROPERTY_KEY, None)
        if record is not None and self.results.causes is not None:
            record("sixcheck_causes", len(self.results.causes))
            if self.results.causes:
                record("sixcheck_top_cause", self.results.causes[0].title)
        if self.prometheus_file is not None:
            from . import prometheus  # only a run with --prometheus loads it

            try:
                prometheus.write(self.prometheus_file, doc)
            except OSError as exc:
                session.config.get_terminal_writer().line(
                    f"sixcheck: cannot write {self.prometheus_file}: {exc}", red=True
                )

    def pytest_unconfigure(self) -> None:
        # after every writer (pytest-html writes in its own sessionfinish), prune and index
        if self.report_dir is None or not self.report_dir.is_dir():
            return
        from . import history

        try:
            history.rotate(self.report_dir, self.keep, self.fresh)
        except (history.HistoryError, OSError) as exc:
            import sys

            print(f"sixcheck: report folder {self.report_dir}: {exc}", file=sys.stderr)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Generator[None]:
        # the outermost wrapper: the causes come before pytest's own summary (every failure in
        # full), the one-line verdicts and the report paths after its short summary, last on
        # the screen
        section = self.results.cause_section()
        if section is not None:
            title, lines = section
            terminalreporter.write_sep("=", title, red=True, bold=True)
            for line in lines:
                terminalreporter.write_line(line)
        try:
            return (yield)
        finally:
            for line in self.results.terminal_lines():
                terminalreporter.write_line(line)
