"""A plugin whose op has a diagram kind netc does not draw and a text attribute without choices."""

import dataclasses

from compiler.ops import OPS, Attr

NETC_OPS = [
    dataclasses.replace(
        OPS["sigmoid"], name="odd", diagram="sparkles", attrs={"how": Attr(kind="str", default="x")}
    )
]
