"""``odin.jobs.crontab``: reading crontab lines, their settings, cron's % rule, the exactness of
each schedule translation (checked against Odin's own parser), and the job files it builds."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from odin.jobs.crontab import (
    DEFAULT_SHELL,
    Form,
    ImportPlan,
    Skip,
    english_candidates,
    job_name,
    offset_changes,
    parse_crontab,
    plan_import,
    split_percent,
    translate,
    unique_name,
)
from odin.jobs.notify import AlertEvent, Notify
from odin.jobs.spec import Language, load_job_yaml
from odin.schedule import parse

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HOST = "Europe/Dublin"


def plan(text: str, host_zone: str = HOST) -> ImportPlan:
    return plan_import(text, host_zone=host_zone, start=START)


def fires(text: str, zone: str, start: datetime, count: int) -> list[float]:
    return [fire.timestamp() for fire in parse(text, zone).next_n(start, count)]


def agree(english: str, cron: str, zone: str) -> bool:
    """An independent check: the same 500 instants from the start and around each DST change."""
    starts = [
        START,
        *(change - timedelta(hours=3) for change in offset_changes(parse(cron, zone).zone, START)),
    ]
    return all(fires(english, zone, s, 500) == fires(cron, zone, s, 500) for s in starts)


# -- lines ------------------------------------------------------------------------------


def test_comments_and_blank_lines_are_skipped_and_fields_split() -> None:
    crontab = parse_crontab(
        "# m h dom mon dow command\n\n   \n  # indented comment\n"
        "0 9 * * 1-5\t/usr/bin/report --daily  # a shell comment\n"
    )
    assert not crontab.skipped and not crontab.remarks
    (line,) = crontab.lines
    assert (line.number, line.schedule) == (5, "0 9 * * 1-5")
    assert line.command == "/usr/bin/report --daily  # a shell comment"
    assert line.stdin is None


def test_malformed_lines_are_reported_with_their_numbers_and_the_rest_imported() -> None:
    result = plan(
        "this is not cron\n"
        "0 9 * * *\n"
        "61 * * * * echo bad minute\n"
        "@fortnightly echo what\n"
        "@reboot echo boot\n"
        "0 9 * * * echo fine\n"
    )
    assert [job.line.number for job in result.jobs] == [6]
    found = {item.number: item for item in result.skipped}
    assert sorted(found) == [1, 2, 3, 4, 5]
    assert found[1].kind is Skip.MALFORMED and "not a cron line" in found[1].reason
    assert found[2].kind is Skip.MALFORMED and "no command" in found[2].reason
    assert found[3].kind is Skip.MALFORMED and "minute" in found[3].reason.lower()
    assert found[4].kind is Skip.MALFORMED and "@fortnightly" in found[4].reason
    assert found[5].kind is Skip.UNSUPPORTED and "@reboot" in found[5].reason
    assert found[5].text == "@reboot echo boot"


def test_settings_apply_to_the_lines_after_them_only() -> None:
    result = plan(
        "0 1 * * * echo before\n"
        'GREETING = "hello there"\n'
        "QUOTED='single'\n"
        "PATH=/opt/bin:/usr/bin:/bin\n"
        "0 2 * * * echo after\n"
        "GREETING=changed  \n"
        "0 3 * * * echo later\n"
    )
    before, after, later = (job.spec for job in result.jobs)
    assert dict(before.env) == {}
    assert dict(after.env) == {
        "GREETING": "hello there",
        "QUOTED": "single",
        "PATH": "/opt/bin:/usr/bin:/bin",
    }
    assert dict(later.env)["GREETING"] == "changed"


def test_mailto_becomes_a_notify_entry_on_failure_and_empty_mailto_stops_it() -> None:
    result = plan(
        "MAILTO=ops@example.org, dev@example.org\n"
        "0 1 * * * echo one\n"
        'MAILTO=""\n'
        "0 2 * * * echo two\n"
        "MAILTO=root\n"
        "0 3 * * * echo three\n"
    )
    one, two, three = (job.spec for job in result.jobs)
    expected = Notify(to="mailto:ops@example.org,dev@example.org", on=(AlertEvent.FAILURE,))
    assert one.notify == (expected,)
    assert "on:" in result.jobs[0].yaml_text or "'on':" in result.jobs[0].yaml_text
    assert two.notify == () and three.notify == ()
    (bad,) = result.skipped
    assert bad.number == 5 and bad.kind is Skip.UNSUPPORTED and "mail address" in bad.reason
    assert result.remarks[0].number == 1 and "when they fail" in result.remarks[0].note


def test_cron_tz_and_tz_set_the_zone_and_the_host_zone_is_the_default() -> None:
    result = plan(
        "0 9 * * * echo host\n"
        "TZ=America/New_York\n"
        "0 9 * * * echo tz\n"
        "CRON_TZ=Asia/Tokyo\n"
        "0 9 * * * echo cron_tz\n"
        "CRON_TZ=Mars/Olympus\n"
        "0 9 * * * echo nowhere\n",
        host_zone="Europe/Dublin",
    )
    host, tz, cron_tz = (job.spec for job in result.jobs)
    assert host.timezone == "Europe/Dublin" and "TZ" not in host.env
    assert tz.timezone == "America/New_York" and tz.env["TZ"] == "America/New_York"
    assert cron_tz.timezone == "Asia/Tokyo" and "CRON_TZ" not in cron_tz.env
    (nowhere,) = result.skipped
    assert nowhere.number == 7 and "CRON_TZ" in nowhere.reason and "Mars/Olympus" in nowhere.reason


def test_shell_home_and_reserved_names() -> None:
    result = plan(
        "SHELL=/bin/bash\n"
        "HOME=/srv/work\n"
        "LOGNAME=someone\n"
        "0 1 * * * echo bash\n"
        "SHELL=/usr/bin/zsh\n"
        "MY-VAR=1\n"
        "ODIN_SECRET=1\n"
        "0 2 * * * echo sh\n"
    )
    bash, sh = result.jobs
    assert bash.line.environment.shell == "/bin/bash" and "SHELL = '/bin/bash'" in bash.code
    assert sh.line.environment.shell == DEFAULT_SHELL and "SHELL = '/bin/sh'" in sh.code
    assert bash.spec.workdir == "/srv/work" and "HOME = '/srv/work'" in bash.code
    assert "HOME" not in bash.spec.env and "LOGNAME" not in bash.spec.env
    remarks = {remark.number: remark.note for remark in result.remarks}
    assert "/bin/bash" in remarks[1] and "LOGNAME" in remarks[3] and "/bin/sh" in remarks[5]
    assert [(item.number, item.kind) for item in result.skipped] == [
        (6, Skip.UNSUPPORTED),
        (7, Skip.UNSUPPORTED),
    ]


# -- cron's % rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("echo plain", ("echo plain", None)),
        (r"date +\%Y-\%m-\%d", ("date +%Y-%m-%d", None)),
        ("mail -s hi bob%line one%line two", ("mail -s hi bob", "line one\nline two")),
        (r"cat%100\% sure%", ("cat", "100% sure\n")),
        ("cat%", ("cat", "")),
        (r"printf '\n'", (r"printf '\n'", None)),
        (r"echo \\%rest", ("echo \\\\", "rest")),
        (r"cat%a\b", ("cat", r"a\b")),
    ],
)
def test_percent_splits_the_command_from_its_input_as_cron_does(
    command: str, expected: tuple[str, str | None]
) -> None:
    assert split_percent(command) == expected


# -- schedules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "english"),
    [
        ("0 9 * * 1-5", "Europe/Dublin", "every weekday at 09:00"),
        ("*/15 * * * *", "Europe/Dublin", "every 15 minutes"),
        ("30 2 * * *", "America/New_York", "every day at 02:30"),
        ("0 * * * *", "Europe/Dublin", "every hour"),
        ("0 * * * *", "Asia/Kolkata", "every hour at :00"),
        ("@hourly", "UTC", "every hour"),
        ("@daily", "Europe/Dublin", "every day at 00:00"),
        ("@midnight", "UTC", "every day at 00:00"),
        ("@weekly", "UTC", "every Sunday at 00:00"),
        ("@monthly", "UTC", "every 1st at 00:00"),
        ("@yearly", "UTC", "every January 1st at 00:00"),
        ("@annually", "UTC", "every January 1st at 00:00"),
        ("5 * * * *", "UTC", "every hour at :05"),
        ("0 */6 * * *", "UTC", "every 6 hours"),
        ("0 */6 * * *", "Europe/Dublin", "every 6 hours at :00"),
        ("0 0,12 * * *", "UTC", "every day at 00:00 and 12:00"),
        (
            "*/15 9-17 * * 1-5",
            "Europe/Dublin",
            "every 15 minutes between 09:00 and 17:45 on weekdays",
        ),
        ("0 9-17 * * *", "Europe/Dublin", "every hour between 09:00 and 17:00"),
        ("30 9-17 * * 1-5", "UTC", "every hour at :30 between 09:30 and 17:30 on weekdays"),
        ("* * * * *", "Europe/Dublin", "every minute"),
        ("* 9 * * *", "UTC", "every minute between 09:00 and 09:59"),
        ("0 9 31 * *", "UTC", "every 31st at 09:00"),
        ("0 0 29 2 *", "UTC", "every February 29th at 00:00"),
        ("0 9 1,15 * *", "UTC", "every 1st and 15th at 09:00"),
        ("0 0 1 1,7 *", "UTC", "every January 1st and July 1st at 00:00"),
        ("0 10 * * 6,0", "UTC", "every weekend at 10:00"),
        ("0 9 * * 1,3,5", "UTC", "every Monday, Wednesday and Friday at 09:00"),
        ("0 9 * * 7", "UTC", "every Sunday at 09:00"),
        ("0 4 * * mon-fri", "UTC", "every weekday at 04:00"),
        ("5,35 * * * *", "UTC", "every hour at :05 and :35"),
        ("*/20 * * * 1-5", "Europe/Dublin", "every 20 minutes on weekdays"),
        ("0 8-18/2 * * *", "UTC", "every day at 08:00, 10:00, 12:00, 14:00, 16:00 and 18:00"),
    ],
)
def test_english_where_it_fires_at_exactly_the_same_times(
    cron: str, zone: str, english: str
) -> None:
    translation = translate(cron, zone, START)
    assert (translation.schedule, translation.form) == (english, Form.ENGLISH)
    assert agree(english, cron, zone)


@pytest.mark.parametrize(
    ("cron", "zone", "naive"),
    [
        # Vixie cron's day rule: the 1st to 7th OR any Monday, not the first Monday.
        ("0 9 1-7 * 1", "UTC", "every first Monday at 09:00"),
        # */7 restarts each hour (:56 then :00); Odin's interval is a fixed 7-minute grid.
        ("*/7 * * * *", "UTC", "every 7 minutes"),
        # A fall-back night repeats 01:05: cron runs twice, Odin's wall-clock form once.
        ("5 * * * *", "Europe/Dublin", "every hour at :05"),
        # A 30-minute DST shift: neither elapsed hours nor wall-clock hours match cron.
        ("@hourly", "Australia/Lord_Howe", "every hour"),
        # Elapsed 2-hour steps fall on odd local hours at UTC-5; wall-clock steps differ at DST.
        ("0 */2 * * *", "America/New_York", "every 2 hours"),
        # A 20-minute grid from 1970 UTC falls at :10, :30, :50 at UTC+05:30.
        ("*/20 * * * 1-5", "Asia/Kolkata", "every 20 minutes on weekdays"),
        # Restricted months with weekdays, and every other day: no English form at all.
        ("0 9 * 1 1", "UTC", None),
        ("0 9 */2 * *", "UTC", None),
    ],
)
def test_cron_stays_where_english_would_differ(cron: str, zone: str, naive: str | None) -> None:
    translation = translate(cron, zone, START)
    assert (translation.schedule, translation.form) == (cron, Form.CRON)
    assert translation.notes and translation.notes[0].startswith("stays cron")
    if naive is not None:
        assert not agree(naive, cron, zone)


def test_the_first_candidate_that_agrees_wins() -> None:
    # "every hour" is elapsed time, at :30 in a zone half an hour off UTC; the wall-clock
    # form is exact there (no DST).
    assert not agree("every hour", "0 * * * *", "Asia/Kolkata")
    assert english_candidates(["0", "*", "*", "*", "*"])[:2] == ["every hour", "every hour at :00"]
    assert translate("0 * * * *", "Asia/Kolkata", START).schedule == "every hour at :00"


def test_candidates_never_cover_the_day_or_rule() -> None:
    assert english_candidates(["0", "9", "1-7", "*", "1"]) == []
    assert english_candidates(["0", "9", "1-31", "*", "1"]) == []


def test_every_zone_change_of_the_next_two_years_is_found() -> None:
    changes = offset_changes(parse("never", "Europe/Dublin").zone, START)
    assert [change.isoformat() for change in changes] == [
        "2025-10-26T01:00:00+00:00",
        "2026-03-29T01:00:00+00:00",
        "2026-10-25T01:00:00+00:00",
        "2027-03-28T01:00:00+00:00",
    ]
    assert offset_changes(parse("never", "UTC").zone, START) == []


# -- jobs -----------------------------------------------------------------------------


def test_every_generated_yaml_loads_and_says_what_the_line_said() -> None:
    text = (
        "SHELL=/bin/bash\nMAILTO=me@example.org\nX=1\n"
        "0 9 * * 1-5 /usr/local/bin/report.sh --daily > /tmp/r.log 2>&1\n"
        "*/15 * * * * cd /srv/app && ./sync.py\n"
        "*/7 * * * * echo seven\n"
        "@daily python3 /opt/jobs/cleanup.py --all\n"
        "0 * * * * mail -s 'hi' bob%line one%line two\n"
        "0 9 * * * echo seven\n"
    )
    result = plan(text)
    assert not result.skipped
    names = [job.spec.name for job in result.jobs]
    assert names == ["report", "sync", "echo", "cleanup", "mail", "echo_2"]
    for job in result.jobs:
        spec = load_job_yaml(job.yaml_text, source=job.yaml_name)
        assert spec == job.spec
        assert spec.language is Language.PYTHON and spec.file == f"{spec.name}.py"
        assert job.yaml_name == f"{spec.name}.yml"
        assert spec.description == job.line.text and spec.timezone == HOST
        assert spec.schedule == job.translation.schedule
        assert dict(spec.env) == {"SHELL": "/bin/bash", "X": "1"}
        compile(job.code, spec.file, "exec")
    ids = {job.spec.id for job in result.jobs}
    assert len(ids) == len(result.jobs)


def test_a_description_with_control_characters_still_loads() -> None:
    result = plan("0 9 * * * echo '\x1b[31mred'\t# tab\n")
    (job,) = result.jobs
    assert job.spec.description == "0 9 * * * echo '?[31mred'\t# tab"
    assert "\\x1b[31mred" in job.code


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("/usr/local/bin/backup.sh --full > /dev/null 2>&1", "backup"),
        ("cd /srv/app && ./manage.py clearsessions", "manage"),
        ("python3 /opt/jobs/clean-up.py --all", "clean_up"),
        ("FOO=1 nice -n 10 /usr/bin/rsync -a src dst", "rsync"),
        ("timeout 10m /usr/bin/Big-Job", "big_job"),
        ("sudo run-parts /etc/x", "run_parts"),
        ('"/opt/My App/start"', "my"),
        ("/usr/bin/éé", "job"),
        ("true", "job"),
    ],
)
def test_job_names_come_from_the_program(command: str, name: str) -> None:
    assert job_name(command) == name


def test_unique_names() -> None:
    taken = {"echo", "echo_2"}
    assert unique_name("echo", taken) == "echo_3"
    assert unique_name("sync", taken) == "sync"


@pytest.mark.parametrize(
    "command",
    [
        'printf \'%s|%s\\n\' "$GREETING" "it\'s"; cat; exit 7',
        "echo 'a \"quoted\" \\\\ back\\slash' $((6*7)) ünïcödé; cat; exit 7",
    ],
)
def test_the_wrapper_runs_the_command_with_its_input_and_keeps_the_exit_code(
    tmp_path: Path, command: str
) -> None:
    escaped = command.replace("%", "\\%")
    result = plan(f"GREETING=hi there\n0 9 * * * {escaped}%first%second\n")
    (job,) = result.jobs
    path = tmp_path / job.spec.file
    path.write_text(job.code, encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", **job.spec.env}
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 7, done.stderr
    expected = subprocess.run(
        ["/bin/sh", "-c", command],
        input="first\nsecond",
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.stdout == expected.stdout and "first\nsecond" in done.stdout


def test_a_signal_ends_the_wrapper_with_128_plus_it(tmp_path: Path) -> None:
    (job,) = plan("0 9 * * * kill -TERM $$\n").jobs
    path = tmp_path / job.spec.file
    path.write_text(job.code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(path)], check=False)
    assert done.returncode == 128 + 15


def test_an_empty_crontab_makes_nothing() -> None:
    result = plan("# nothing here\n\n")
    assert result == ImportPlan((), (), ())
