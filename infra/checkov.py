"""Checkov reads its suppressions from a resource's CloudFormation metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import CfnResource

if TYPE_CHECKING:
    from constructs import IConstruct

METADATA_KEY = "checkov"


def skip_checkov(construct: IConstruct, check_id: str, reason: str) -> None:
    """Suppress one checkov check on the construct's CloudFormation resource, saying why.

    Checkov expects `Metadata: {checkov: {skip: [{id, comment}]}}`; skips accumulate.
    """
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    metadata: dict[str, Any] = resource.get_metadata(METADATA_KEY) or {"skip": []}
    metadata["skip"] = [*metadata["skip"], {"id": check_id, "comment": reason}]
    resource.add_metadata(METADATA_KEY, metadata)
