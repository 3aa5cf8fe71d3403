"""rules: validate, test, show, list and describe rule files."""

import sys
from typing import Annotated, Optional

import typer

from .. import paths
from . import EXIT_DATA, CliError, app, load_rules, user_errors
from .options import Opt, PlatformOpt, ReportFormat

rules_app = typer.Typer(
    help="Validate, test, show and describe rule files.\n\nExamples:\n\n\b\n  refundadvisor rules validate\n"
         "  refundadvisor rules test my-rules.yaml --coverage\n  refundadvisor rules schema > rules.schema.json",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(rules_app, name="rules")

PathArgument = Annotated[Optional[str], typer.Argument(metavar="[PATH]", help="The rule file [default: as for check: --rules, $REFUNDADVISOR_RULES, user config, bundled].", show_default=False)]
FormatOption = Annotated[ReportFormat, Opt("--format", metavar="FORMAT", help="text or json [default: text].")]
StrictOption = Annotated[bool, Opt("--strict", help="Fail on warnings too.")]


def _rule_file(path: Optional[str], platform: Optional[str]) -> str:
    """The rule file a rules command works on: PATH, else as for check."""
    if path and platform:
        raise CliError("give a PATH or --platform, not both")
    try:
        return paths.rules_path(path, platform=platform)[0]
    except paths.UnknownPlatform as error:
        raise CliError(str(error)) from None


@rules_app.command("validate")
def rules_validate(path: PathArgument = None, platform: PlatformOpt = None, strict: StrictOption = False,
                   output_format: FormatOption = ReportFormat.text) -> None:
    """Check a rule file and list every problem, located (path:line:col).

    Examples:

      \b
      refundadvisor rules validate
      refundadvisor rules validate my-rules.yaml --strict --format json
    """
    from ..render import to_json, validation_document, validation_text
    from ..rules import inspect

    with user_errors():
        chosen = _rule_file(path, platform)
        ruleset, problems, sha = inspect(chosen)
        document = validation_document(chosen, sha, problems, ruleset)
        sys.stdout.write((to_json(document) if output_format == "json" else validation_text(document)) + "\n")
        if not document["valid"] or (strict and document["warnings"]):
            raise typer.Exit(EXIT_DATA)


@rules_app.command("test")
def rules_test(path: PathArgument = None, platform: PlatformOpt = None,
               coverage: Annotated[bool, Opt("--coverage", help="List the rules and bands no test exercises.")] = False,
               strict: StrictOption = False, output_format: FormatOption = ReportFormat.text) -> None:
    """Validate a rule file, then run the tests written in it (tests: and examples:).

    Examples:

      \b
      refundadvisor rules test
      refundadvisor rules test my-rules.yaml --coverage
    """
    from ..render import test_report_document, test_report_text, to_json, validation_document, validation_text
    from ..rules import inspect
    from ..ruletests import run_tests

    with user_errors():
        chosen = _rule_file(path, platform)
        ruleset, problems, sha = inspect(chosen)
        validation = validation_document(chosen, sha, problems, ruleset)
        if ruleset is None or (strict and validation["warnings"]):
            text = to_json(validation) if output_format == "json" else validation_text(validation)
            sys.stdout.write(text + "\n")
            raise typer.Exit(EXIT_DATA)
        report = run_tests(ruleset)
        if output_format == "json":
            sys.stdout.write(to_json({**test_report_document(report), "warnings": validation["warnings"]}) + "\n")
        else:
            sys.stdout.write(test_report_text(report, coverage) + "\n")
        if report.failed:
            raise typer.Exit(EXIT_DATA)


@rules_app.command("show")
def rules_show(path: PathArgument = None, platform: PlatformOpt = None,
               no_color: Annotated[bool, Opt("--no-color", help="No colour.")] = False,
               json_output: Annotated[bool, Opt("--json", help="Print it as one JSON document.")] = False) -> None:
    """Show a rule file as tables: facts, causes, evidence, parameters, rules and bands, merged
    with the files it builds on (extends:), each row naming the file it comes from.

    Example:

      \b
      refundadvisor rules show
    """
    from ..render import make_console, render_rules_show
    from ..rules.cache import load

    with user_errors():
        ruleset = load(_rule_file(path, platform))
        if json_output:
            from ..render import rules_document, to_json

            sys.stdout.write(to_json(rules_document(ruleset)) + "\n")
            return
        render_rules_show(ruleset, make_console(no_color=no_color))


@rules_app.command("list")
def rules_list(output_format: FormatOption = ReportFormat.text) -> None:
    """List the bundled platforms' rule files, with their policy dates and sources.

    Example:

      \b
      refundadvisor rules list
    """
    from ..render import layout_width, platforms_document, platforms_text, to_json
    from ..rules.cache import load

    with user_errors():
        rulesets = {name: load(str(path)) for name, path in paths.bundled_platforms().items()}
        document = platforms_document(rulesets, paths.default_platform())
        text = to_json(document) if output_format == "json" else platforms_text(document, layout_width(sys.stdout))
        sys.stdout.write(text + "\n")


@rules_app.command("schema")
def rules_schema() -> None:
    """Print the JSON Schema (draft-07) of rule files, for editors and other tools.

    Example:

      \b
      refundadvisor rules schema > rules.schema.json
    """
    from importlib.resources import files

    sys.stdout.write(files("refundadvisor.rules").joinpath("schema.json").read_text(encoding="utf-8"))


@rules_app.command("cases")
def rules_cases(
    paths_given: Annotated[Optional[list[str]], typer.Argument(metavar="[PATH]...", help="Case files or folders of them [default: the case library shipped with refundadvisor].", show_default=False)] = None,
    min_agreement: Annotated[Optional[float], Opt("--min-agreement", metavar="PERCENT", min=0, max=100, help="Exit 1 when fewer cases than this share (0-100) agree.")] = None,
    every: Annotated[bool, Opt("--all", help="List every case, not only the disagreements.")] = False,
    json_output: Annotated[bool, Opt("--json", help="Print it as one JSON document.")] = False,
) -> None:
    """Run the case library: real, public refund requests with a known outcome, each assessed
    with its platform's bundled rules as check would. Prints agreement per platform, a table of
    band against outcome and every disagreement.

    Examples:

      \b
      refundadvisor rules cases
      refundadvisor rules cases my-cases.yaml --min-agreement 80 --json
    """
    from .. import cases
    from ..render import SCHEMA_VERSION, to_json
    from ..rules.cache import load

    with user_errors():
        if min_agreement is not None and min_agreement != min_agreement:  # NaN passes Click's range check
            raise CliError("--min-agreement: 'nan' is not a share; give a number from 0 to 100")
        loaded: dict = {}

        def ruleset_for(name: str):
            if name not in loaded:
                try:
                    loaded[name] = load(str(paths.platform_path(name, "platform")))
                except paths.UnknownPlatform:
                    raise cases.CaseFileError(f"the platform {name!r} has no bundled rule file (bundled: "
                                              f"{', '.join(paths.bundled_platforms())})") from None
            return loaded[name]

        try:
            files = cases.case_files(paths_given or [str(paths.bundled_cases())])
            report = cases.run([cases.load_case_file(path) for path in files], ruleset_for)
        except cases.CaseFileError as error:
            raise CliError(str(error), EXIT_DATA) from None
        if json_output:
            sys.stdout.write(to_json(cases.report_document(report, files, min_agreement, SCHEMA_VERSION)) + "\n")
        else:
            sys.stdout.write(cases.report_text(report, every) + "\n")
        if report.errors:
            first = report.errors[0]
            raise CliError(f"{len(report.errors)} case(s) could not be assessed, first {first.case.id} "
                           f"({first.case.path}:{first.case.line}): {first.error}", EXIT_DATA)
        if min_agreement is not None and report.agreement() < min_agreement:
            raise CliError(f"agreement {report.agreement():.1f}% is below --min-agreement {min_agreement:g}%",
                           EXIT_DATA)
