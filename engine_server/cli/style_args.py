"""STYLE arguments of `stylize` and `batch`: an image file, or `lib:NAME` (a library style by its id
or its name). In this process a library style brings its cached Grams (the library's gram cache);
through a running engine it goes as a library reference, resolved against that engine's library."""

from ..core.errors import InputError

PREFIX = "lib:"


def is_library(arg):
    return arg.startswith(PREFIX)


def pick(infos, arg):
    """The one style whose id, else name, is `lib:NAME`'s NAME (exact, then ignoring case)."""
    wanted = arg[len(PREFIX):].strip()
    if not wanted:
        raise InputError("%s: give a style id or name after lib:" % arg, field="styles")
    for test in (lambda info: info["id"] == wanted, lambda info: info["name"] == wanted,
                 lambda info: info["name"].lower() == wanted.lower()):
        found = [info for info in infos if test(info)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InputError("%s names %d library styles (%s); use the id" % (
                arg, len(found), ", ".join(info["id"] for info in found)), field="styles")
    names = ", ".join(sorted(info["name"] for info in infos)[:10]) or "the library is empty"
    raise InputError("%s: no library style with that id or name (have: %s)" % (arg, names), field="styles")


class LocalStyles:
    """StyleInputs for this process; `gram_cache` keeps every style's Grams for the whole run."""

    def __init__(self, args_styles, library_folder=None):
        from ..core.images import load_rgb
        from ..core.stylize import StyleInput

        self._library = None
        self.inputs = []
        for index, arg in enumerate(args_styles):
            if is_library(arg):
                library = self.library(library_folder)
                info = pick([{"id": i.id, "name": i.name} for i in library.list()], arg)
                self.inputs.append(StyleInput(library.image(info["id"]), key=info["id"]))
            else:
                # A key for this run only: a batch computes each style's Grams once per working size.
                self.inputs.append(StyleInput(load_rgb(arg, "style image"), key="run-style-%d" % index))
        self.gram_cache = RunGramCache(self._library.gram_cache if self._library is not None else None)

    def library(self, folder):
        if self._library is None:
            from ..library.style_library import StyleLibrary
            self._library = StyleLibrary(folder)
        return self._library


class RunGramCache:
    """Grams kept in memory for one run, in front of the library's cache (which persists them)."""

    def __init__(self, library_cache=None):
        self.library_cache = library_cache
        self._grams = {}

    def get(self, key, size, layer, pooling):
        found = self._grams.get((key, tuple(size), layer, pooling))
        if found is None and self.library_cache is not None and not key.startswith("run-style-"):
            found = self.library_cache.get(key, size, layer, pooling)
        return found

    def put(self, key, size, layer, pooling, gram):
        self._grams[(key, tuple(size), layer, pooling)] = gram
        if self.library_cache is not None and not key.startswith("run-style-"):
            self.library_cache.put(key, size, layer, pooling, gram)

    def flush(self):
        if self.library_cache is not None:
            self.library_cache.flush()


def engine_styles(client, args_styles, load_pixels):
    """StyleRefs for a running engine: files as pixels (load_pixels(path)), lib:NAME as library refs."""
    from shared import protocol as p

    infos = None
    refs = []
    for arg in args_styles:
        if is_library(arg):
            if infos is None:
                infos = client.list_styles()
            refs.append(p.StyleRef.library(pick(infos, arg)["id"]))
        else:
            refs.append(p.StyleRef.pixels(load_pixels(arg)))
    return refs
