"""pySigma / sigma-cli plugin: the SecretSight pipelines, found by pySigma's plugin
autodiscovery through the `sigma.pipelines` namespace (this directory's parents carry no
`__init__.py`, so they merge with pySigma's own namespace packages).

    sigma convert -t loki -p secretsight -p secretsight_loki sigma/rules

`secretsight` fills the rules' `%placeholders%` from the default config, or from the file named
by $SECRETSIGHT_CONFIG; `secretsight_<target>` are the target pipelines in sigma/pipelines/
plus what the plain backends need (`secretsight.compile.pipelines.sigma_cli_pipeline`).
docs/sigma-cli.md gives the command per target.
SecretSight itself is imported when a pipeline is built, not when the plugin is discovered.
"""

from __future__ import annotations

import os
from collections.abc import Callable

# At module level: sigma-cli resolves the callables' type hints.
from sigma.processing.pipeline import ProcessingPipeline


def secretsight_placeholders() -> ProcessingPipeline:
    from secretsight.config import load_config
    from secretsight.rules import placeholder_pipeline

    return placeholder_pipeline(load_config(os.environ.get("SECRETSIGHT_CONFIG") or None))


def _target(name: str) -> Callable[[], ProcessingPipeline]:
    def target_pipeline() -> ProcessingPipeline:
        from secretsight.compile.pipelines import sigma_cli_pipeline as load
        from secretsight.config import load_config

        # The config's `targets:` names the index and stream labels, as for `compile`.
        return load(name, load_config(os.environ.get("SECRETSIGHT_CONFIG") or None))

    target_pipeline.__name__ = f"secretsight_{name}"
    target_pipeline.__doc__ = f"SecretSight {name} field names and log source selection."
    return target_pipeline


pipelines: dict[str, Callable[[], ProcessingPipeline]] = {
    "secretsight": secretsight_placeholders,
    "secretsight_loki": _target("loki"),
    "secretsight_elastic": _target("elastic"),
    "secretsight_splunk": _target("splunk"),
}
