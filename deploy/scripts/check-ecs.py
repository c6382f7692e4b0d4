#!/usr/bin/env python3
"""Checks deploy/ecs/ offline against the AWS API shapes that ship inside botocore.

There is no published JSON Schema for ECS task definitions, but botocore carries the exact input
shapes of the API calls these files are fed to, and its validator reports unknown keys, wrong types
and missing required fields: the mistakes that otherwise surface only at deploy time.

  <svc>.json          -> ecs RegisterTaskDefinition   (aws ecs register-task-definition --cli-input-json)
  <svc>.service.json  -> ecs CreateService            (aws ecs create-service --cli-input-json)
  autoscaling.json    -> {svc: {scalableTarget -> application-autoscaling RegisterScalableTarget,
                                scalingPolicy  -> application-autoscaling PutScalingPolicy}}

It also checks that every task definition has a service definition and an autoscaling entry, so a
new service cannot be half added. `${VAR}` placeholders are left as they are: they are strings; but
each must be an output of deploy/cloudformation/ordo.yaml (IdentitySecurityGroupId fills
${IDENTITY_SECURITY_GROUP_ID}) or one of the few chosen at deploy time, so the stack and the
definitions cannot drift apart.

Usage: deploy/scripts/check-ecs.py [DIR]   (default deploy/ecs; needs botocore, which .ci/run installs)
"""

import json
import re
import sys
from pathlib import Path

import botocore.session
from botocore.validate import ParamValidator


# Placeholders that are no output of the CloudFormation stack: chosen by whoever deploys.
CHOSEN_AT_DEPLOY = {"AWS_ACCOUNT_ID", "AWS_REGION", "IMAGE_TAG", "ECS_CLUSTER", "EMAIL_FROM", "VAPID_SUBJECT"}


def stack_outputs(template: Path) -> set[str]:
    """The template's output names as placeholders. Read by indentation, not as CloudFormation YAML
    (whose !Ref and !Sub tags a plain YAML loader refuses): keys two spaces in under `Outputs:`."""
    names: set[str] = set()
    in_outputs = False
    for line in template.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            in_outputs = line.rstrip() == "Outputs:"
        elif in_outputs and (m := re.fullmatch(r"  ([A-Za-z0-9]+):\s*", line)):
            names.add(re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", m.group(1)).upper())
    return names


def main() -> int:
    ecs_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/ecs")
    session = botocore.session.get_session()
    models = {
        "ecs": session.get_service_model("ecs"),
        "application-autoscaling": session.get_service_model("application-autoscaling"),
    }
    validator = ParamValidator()
    errors: list[str] = []

    def check(service: str, operation: str, params: object, where: str) -> None:
        shape = models[service].operation_model(operation).input_shape
        report = validator.validate(params, shape)
        if report.has_errors():
            errors.append(f"{where} ({service} {operation}):\n{report.generate_report()}")

    def load(path: Path) -> object:
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            errors.append(f"{path}: {e}")
            return None

    task_defs = sorted(p for p in ecs_dir.glob("*.json") if p.name != "autoscaling.json" and not p.name.endswith(".service.json"))
    services = {p.name.removesuffix(".service.json"): p for p in ecs_dir.glob("*.service.json")}
    autoscaling = load(ecs_dir / "autoscaling.json") or {}

    for path in task_defs:
        name = path.stem
        if (doc := load(path)) is not None:
            check("ecs", "RegisterTaskDefinition", doc, str(path))
        if name not in services:
            errors.append(f"{path}: no {name}.service.json beside it")
        if name not in autoscaling:
            errors.append(f"{path}: no '{name}' entry in autoscaling.json")

    for name, path in sorted(services.items()):
        if (doc := load(path)) is not None:
            check("ecs", "CreateService", doc, str(path))

    template = ecs_dir.parent / "cloudformation" / "ordo.yaml"
    if template.is_file():
        known = stack_outputs(template) | CHOSEN_AT_DEPLOY
        for path in sorted(ecs_dir.glob("*.json")):
            for var in sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", path.read_text())) - known):
                errors.append(f"{path}: ${{{var}}} is no output of {template} (nor chosen at deploy)")

    for name, entry in sorted(autoscaling.items()):
        where = f"{ecs_dir / 'autoscaling.json'} [{name}]"
        check("application-autoscaling", "RegisterScalableTarget", entry.get("scalableTarget"), where)
        check("application-autoscaling", "PutScalingPolicy", entry.get("scalingPolicy"), where)

    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    print(f"ECS definitions: {len(task_defs)} task, {len(services)} service, {len(autoscaling)} autoscaling: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
