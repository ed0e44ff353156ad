#!/usr/bin/env python3
"""Generate proto/taskledger/v1/ecs.proto from the ECS service model (botocore service-2.json).

Every structure reachable from the operations taskledger serves becomes a proto3 message, every
ECS string enum a proto enum whose values carry their exact ECS spelling in the
`(taskledger.v1.ecs_value)` option. Member names are the ECS camelCase names in snake_case, with a
`json_name` wherever proto3's own camelCase would differ, so proto3 JSON speaks ECS member names.
Scalars are `optional` so that "absent" and "zero" stay distinct, as they are in ECS.

Field numbers are stable: when the output file already exists, the numbers it assigns are kept and
members new to the model get the next free number. Never renumber a released field.

Usage: python3 tools/gen_ecs_proto.py [path/to/ecs-service-2.json] > proto/taskledger/v1/ecs.proto
"""
import html
import json
import os
import re
import sys

OPERATIONS = [
    "RunTask", "StartTask", "DescribeTasks", "StopTask", "ListTasks",
    "SubmitTaskStateChange", "SubmitContainerStateChange", "SubmitAttachmentStateChanges",
    "RegisterTaskDefinition", "DescribeTaskDefinition", "DeregisterTaskDefinition",
    "ListTaskDefinitions", "ListTaskDefinitionFamilies", "DeleteTaskDefinitions",
    "CreateCluster", "DescribeClusters", "ListClusters", "DeleteCluster",
    "RegisterContainerInstance", "DeregisterContainerInstance",
    "DescribeContainerInstances", "ListContainerInstances", "UpdateContainerInstancesState",
    "PutAttributes", "DeleteAttributes", "ListAttributes",
    "TagResource", "UntagResource", "ListTagsForResource",
]

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "proto", "taskledger", "v1", "ecs.proto")
SCALARS = {"integer": "int32", "long": "int64", "boolean": "bool", "double": "double",
           "float": "float", "string": "string", "blob": "bytes"}
# Member names whose mechanical snake_case reads badly.
NAME_OVERRIDES = {"sizeInGiB": "size_in_gib", "sizeInGiBs": "size_in_gibs"}


def snake(name):
    if name in NAME_OVERRIDES:
        return NAME_OVERRIDES[name]
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def proto_json_name(snake_name):
    parts = snake_name.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def upper_snake(name):
    return snake(name).upper()


def enum_value_name(prefix, value):
    words = [snake(part) for part in re.split(r"[^A-Za-z0-9]+", value) if part]
    return f"{prefix}_{'_'.join(words).upper()}"


def first_sentence(doc):
    if not doc:
        return ""
    text = html.unescape(re.sub(r"<[^>]+>", " ", doc))
    text = re.sub(r"\s+", " ", text).strip()
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    text = m.group(1) if m else text
    return text if len(text) <= 220 else text[:217].rstrip() + "..."


def existing_numbers(path):
    """message/enum name -> {member: number} from a previous output, to keep numbers stable."""
    numbers = {}
    if not os.path.exists(path):
        return numbers
    current = None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s*(message|enum)\s+(\w+)\s*\{", line)
        if m:
            current = numbers.setdefault(m.group(2), {})
            continue
        m = re.match(r"\s*(?:optional |repeated )?(?:[\w.<>, ]+\s)?(\w+)\s*=\s*(\d+)", line)
        if current is not None and m:
            current[m.group(1)] = int(m.group(2))
        if line.strip() == "}":
            current = None
    return numbers


def main():
    model_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "..", "..", "shared", "reference", "ecs-service-2.json")
    model = json.load(open(model_path, encoding="utf-8"))
    shapes = model["shapes"]
    previous = existing_numbers(OUT)

    reached = []
    seen = set()

    def reach(name):
        if name in seen:
            return
        seen.add(name)
        shape = shapes[name]
        if shape["type"] == "structure":
            for member in shape["members"].values():
                reach(member["shape"])
        elif shape["type"] == "list":
            reach(shape["member"]["shape"])
        elif shape["type"] == "map":
            reach(shape["key"]["shape"])
            reach(shape["value"]["shape"])
        reached.append(name)

    for op in OPERATIONS:
        reach(model["operations"][op]["input"]["shape"])
        reach(model["operations"][op]["output"]["shape"])

    def field_type(shape_name):
        """(label, type) for a member of this shape."""
        shape = shapes[shape_name]
        t = shape["type"]
        if t == "structure":
            return "", shape_name
        if t == "list":
            inner = shapes[shape["member"]["shape"]]
            if inner["type"] in ("list", "map"):
                raise SystemExit(f"nested collection {shape_name} is not supported")
            return "repeated ", field_type(shape["member"]["shape"])[1]
        if t == "map":
            return "", "map<string, string>"
        if t == "timestamp":
            return "", "google.protobuf.Timestamp"
        if t == "string" and "enum" in shape:
            return "optional ", shape_name
        return "optional ", SCALARS[t]

    def limits(shape_name, member):
        shape = shapes[shape_name]
        notes = []
        if "min" in shape or "max" in shape:
            notes.append(f"{shape.get('min', '')}..{shape.get('max', '')}")
        return notes

    out = []
    w = out.append
    w("// Generated by tools/gen_ecs_proto.py from the ECS service model (API version 2014-11-13).")
    w("// Do not edit by hand: change the generator and run it again. Field numbers are stable.")
    w("//")
    w("// The messages mirror the ECS request and response shapes: member names are ECS's in")
    w("// snake_case (proto3 JSON gives back ECS's camelCase), enums carry their ECS spelling in the")
    w("// `ecs_value` option, times are google.protobuf.Timestamp, and every scalar is `optional`")
    w("// so that absent and zero stay distinct, as they do in ECS.")
    w('syntax = "proto3";')
    w("")
    w("package taskledger.v1;")
    w("")
    w('import "google/protobuf/timestamp.proto";')
    w('import "taskledger/v1/options.proto";')
    w("")
    w("// The ECS task APIs. Each RPC carries the ECS operation's name and request/response shapes.")
    w("service Ecs {")
    for op in OPERATIONS:
        o = model["operations"][op]
        doc = first_sentence(o.get("documentation", ""))
        if doc:
            w(f"  // {doc}")
        w(f"  rpc {op}({o['input']['shape']}) returns ({o['output']['shape']});")
    w("}")

    for name in sorted(n for n in reached if shapes[n]["type"] == "structure"):
        shape = shapes[name]
        w("")
        doc = first_sentence(shape.get("documentation", ""))
        if doc:
            w(f"// {doc}")
        w(f"message {name} {{")
        prev = previous.get(name, {})
        next_number = max(prev.values(), default=0) + 1
        required = set(shape.get("required", []))
        for member, spec in shape["members"].items():
            field = snake(member)
            number = prev.get(field)
            if number is None:
                number = next_number
                next_number += 1
            label, ftype = field_type(spec["shape"])
            opts = []
            if proto_json_name(field) != member:
                opts.append(f'json_name = "{member}"')
            notes = []
            if member in required:
                notes.append("required")
            notes += limits(spec["shape"], member)
            doc = first_sentence(spec.get("documentation", ""))
            comment = "; ".join(notes)
            if doc:
                w(f"  // {doc}")
            opt = f" [{', '.join(opts)}]" if opts else ""
            tail = f"  // {comment}" if comment else ""
            w(f"  {label}{ftype} {field} = {number}{opt};{tail}")
        w("}")

    for name in sorted(n for n in reached if shapes[n]["type"] == "string" and "enum" in shapes[n]):
        shape = shapes[name]
        prefix = upper_snake(name)
        prev = previous.get(name, {})
        next_number = max(prev.values(), default=0) + 1
        w("")
        w(f"enum {name} {{")
        w(f"  {prefix}_UNSPECIFIED = 0;")
        used = set()
        for value in shape["enum"]:
            vname = enum_value_name(prefix, value)
            if vname in used:
                raise SystemExit(f"enum {name}: {value} collides as {vname}")
            used.add(vname)
            number = prev.get(vname)
            if number is None:
                number = next_number
                next_number += 1
            w(f'  {vname} = {number} [(ecs_value) = "{value}"];')
        w("}")

    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
