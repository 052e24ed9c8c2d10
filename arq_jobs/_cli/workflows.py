"""`arq-jobs workflow start|show|cancel`: chains, groups and chords of tasks (`arq_jobs._workflows`), from
the same JSON spec as `POST /workflows`. Each command prints the workflow as `GET /workflows/{id}`
answers it: a table of its fields and one row per step, or that JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from arq_jobs._cli.errors import ExitCode
from arq_jobs._cli.inputs import parse_payload
from arq_jobs._cli.output import JsonFlag, Output, OutputOption, choose, console, show, workflow_tables
from arq_jobs._cli.session import fail, run
from arq_jobs._cli.wait import WorkflowLines, follow_workflow
from arq_jobs._client import JobClient
from arq_jobs._workflows.engine import Workflows
from arq_jobs._workflows.spec import Workflow
from arq_jobs._workflows.status import WorkflowState, WorkflowStatus

app = typer.Typer(
    help="Workflows: start a chain, group or chord of tasks, follow it, cancel it.",
    no_args_is_help=True,
)

WorkflowId = Annotated[
    str, typer.Argument(help="The workflow's id.", show_default=False, metavar="WORKFLOW_ID")
]


@app.command()
def start(
    ctx: typer.Context,
    spec: Annotated[
        str,
        typer.Option(
            "--json",
            "-j",
            help='The workflow as POST /workflows takes it: {"type": "chain", "steps": [{"task": …, '
            '"input": {…}}, …]}; a group, or a chord with a "callback" step.',
            metavar="JSON",
            show_default=False,
        ),
    ],
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Follow the workflow (its steps on stderr) until it ends; exit 1 unless it succeeds.",
        ),
    ] = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """Check the whole workflow (tasks, inputs, queues), then enqueue its first steps."""

    async def work(client: JobClient) -> WorkflowStatus:
        workflows = Workflows(client)
        workflow_id = await workflows.create(Workflow.from_json(parse_payload(spec), client.registry))
        if not wait:
            return await workflows.status(workflow_id)
        err = console(stderr=True)
        err.print(
            f"workflow {workflow_id} started; waiting for it to end (Ctrl-C stops waiting, not the workflow)",
            markup=False,
            highlight=False,
        )
        return await follow_workflow(workflows, workflow_id, WorkflowLines(err))

    found = run(ctx, work)
    show(found, output, *workflow_tables(found))
    if not wait or found.status is WorkflowState.SUCCEEDED:
        return
    if found.status is WorkflowState.FAILED:
        error = f": {found.error.message}" if found.error else ""
        raise fail(f"workflow {found.workflow_id} failed{error}", ExitCode.JOB_FAILED)
    raise fail(f"workflow {found.workflow_id} was {found.status.value}", ExitCode.JOB_FAILED)


@app.command("show")
def show_workflow(
    ctx: typer.Context,
    workflow_id: WorkflowId,
    output: OutputOption = Output.TABLE,
    as_json: JsonFlag = False,
) -> None:
    """A workflow's state, result or error, and each step's task, job, state and result."""

    async def work(client: JobClient) -> WorkflowStatus:
        return await Workflows(client).status(workflow_id)

    found = run(ctx, work)
    show(found, choose(output, as_json), *workflow_tables(found))


@app.command()
def cancel(
    ctx: typer.Context,
    workflow_id: WorkflowId,
    output: OutputOption = Output.TABLE,
    as_json: JsonFlag = False,
) -> None:
    """Cancel a workflow: no step starts any more; waiting ones are cancelled, running ones stop in ~1 s."""

    async def work(client: JobClient) -> WorkflowStatus:
        return await Workflows(client).cancel(workflow_id)

    found = run(ctx, work)
    summary = f"workflow {workflow_id} {found.status.value}"
    show(found, choose(output, as_json), summary, *workflow_tables(found))
