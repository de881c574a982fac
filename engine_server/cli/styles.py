"""`python -m engine_server styles ...`: list, add, rename, remove, export and import library styles.

engine_server/cli.py calls register(subparsers); each sub-command sets `func(args) -> exit code`,
and cli.py turns a LibraryError (an EngineError) into one line on stderr.
"""

import argparse
import datetime
import json
import sys


def register(subparsers) -> argparse.ArgumentParser:
    styles = subparsers.add_parser("styles", help="manage the style library",
                                   description="Manage the style library (one TFRecord file per style).")
    styles.add_argument("--library", metavar="DIR", default=None,
                        help="library folder (default: the per-user styles folder)")
    actions = styles.add_subparsers(dest="styles_action", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser("list", help="list the styles")
    listing.add_argument("--json", action="store_true", help="print a JSON array (no thumbnails)")
    listing.set_defaults(func=_list)

    add = actions.add_parser("add", help="add an image file as a style")
    add.add_argument("file")
    add.add_argument("--name", default=None, help="display name (default: the file name)")
    add.add_argument("--credit", default="", help="credit / source text")
    add.set_defaults(func=_add)

    rename = actions.add_parser("rename", help="rename a style")
    rename.add_argument("id")
    rename.add_argument("name")
    rename.set_defaults(func=_rename)

    remove = actions.add_parser("remove", help="remove a style")
    remove.add_argument("id")
    remove.set_defaults(func=_remove)

    export = actions.add_parser("export", help="write styles into a pack (.tfrecord)")
    export.add_argument("pack")
    export.add_argument("ids", nargs="+", metavar="ID")
    export.set_defaults(func=_export)

    import_ = actions.add_parser("import", help="add every style of a pack")
    import_.add_argument("pack")
    import_.set_defaults(func=_import)
    return styles


def _library(args):
    from ..library.style_library import StyleLibrary   # TensorFlow loads only when a styles command runs
    return StyleLibrary(args.library)


def _line(info) -> str:
    added = datetime.datetime.fromtimestamp(info.added).strftime("%Y-%m-%d %H:%M")
    credit = "  (%s)" % info.credit.replace("\n", " ") if info.credit else ""
    return "%s  %5dx%-5d  %s  %s%s" % (info.id, info.width, info.height, added, info.name, credit)


def _list(args) -> int:
    library = _library(args)
    infos = library.list()
    for warning in library.warnings:
        print("warning: " + warning, file=sys.stderr)
    if args.json:
        print(json.dumps([info.to_dict(with_thumbnail=False) for info in infos], ensure_ascii=False, indent=1))
    elif not infos:
        print("no styles in %s" % library.folder)
    else:
        for info in infos:
            print(_line(info))
    return 0


def _add(args) -> int:
    print(_line(_library(args).add_file(args.file, name=args.name, credit=args.credit)))
    return 0


def _rename(args) -> int:
    print(_line(_library(args).rename(args.id, args.name)))
    return 0


def _remove(args) -> int:
    _library(args).remove(args.id)
    print("removed %s" % args.id)
    return 0


def _export(args) -> int:
    count = _library(args).export_pack(args.pack, args.ids)
    print("wrote %d style%s to %s" % (count, "" if count == 1 else "s", args.pack))
    return 0


def _import(args) -> int:
    infos = _library(args).import_pack(args.pack)
    for info in infos:
        print(_line(info))
    print("imported %d style%s from %s" % (len(infos), "" if len(infos) == 1 else "s", args.pack))
    return 0
