"""The CDK app: `npx cdk synth` runs `python -m infra.app` (see cdk.json)."""

from __future__ import annotations

import os
from typing import Any

# jsii prints a Node 20 end-of-life banner on every run otherwise.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.config import MaasConfig  # noqa: E402
from infra.stack import MaasStack  # noqa: E402


def build_app(*, context: dict[str, Any] | None = None, outdir: str | None = None) -> App:
    """The app with its one stack and cdk-nag's AwsSolutions checks (synth fails on a finding)."""
    app = App(context=context, outdir=outdir)
    MaasStack(app, "Maas", config=MaasConfig.from_context(app.node))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    """Synthesize into the directory the CDK CLI gives (cdk.out)."""
    build_app().synth()


if __name__ == "__main__":
    main()
