"""The small animation the Krita tests stylize (test_krita_frames.py on 5.1, the own-Python test on
5.2): a .kra file written here, with a Background and an animated paint layer "Anim" of three
64x48 keyframes at TIMES. (Document.importAnimation would build it inside Krita, but Krita 5.1
crashed in it in 6 of 19 headless runs: a thread of a temporary import document outlived it.)

Krita's layer files: "VERSION 2" tile files, 64x64 tiles of B, G, R, A; a tile is a flag byte (0:
stored as is) and the tile's bytes (docs: libs/image/tiles3/swap/kis_tile_compressor_2.cpp)."""

import os
import zipfile

import numpy as np

WIDTH, HEIGHT = 64, 48
FIRST, STEP = 0, 2
TIMES = [FIRST + k * STEP for k in range(3)]
TILE = 64

MAINDOC = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE DOC PUBLIC '-//KDE//DTD krita 2.0//EN' 'http://www.calligra.org/DTD/krita-2.0.dtd'>
<DOC xmlns="http://www.calligra.org/DTD/krita" syntaxVersion="2.0" editor="Krita" kritaVersion="5.1.5">
 <IMAGE colorspacename="RGBA" x-res="72" width="{w}" description="" name="animation" profile="sRGB-elle-V2-srgbtrc.icc" mime="application/x-kra" height="{h}" y-res="72">
  <layers>
   <layer channellockflags="" visible="1" opacity="255" intimeline="1" name="Anim" compositeop="normal" filename="layer2" keyframes="layer2.keyframes.xml" y="0" colorlabel="0" uuid="{{7cf04632-62e4-4686-9c3e-33d5e92aa8cc}}" x="0" collapsed="0" colorspacename="RGBA" nodetype="paintlayer" locked="0" channelflags="" onionskin="0"/>
   <layer opacity="255" colorlabel="0" colorspacename="RGBA" compositeop="normal" uuid="{{e2f4a068-6a62-400e-9366-902be4951872}}" x="0" channelflags="" filename="layer3" name="Background" visible="1" channellockflags="" intimeline="0" nodetype="paintlayer" y="0" locked="0" collapsed="0" onionskin="0"/>
  </layers>
  <animation>
   <framerate type="value" value="24"/>
   <range to="{end}" type="timerange" from="0"/>
   <currentTime type="value" value="0"/>
  </animation>
 </IMAGE>
</DOC>
"""
KEYFRAMES = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE keyframes PUBLIC '-//KDE//DTD krita-keyframes 1.0//EN' 'http://www.calligra.org/DTD/krita-keyframes-1.0.dtd'>
<keyframes xmlns="http://www.calligra.org/DTD/krita-keyframes">
 <channel name="content">
{frames} </channel>
</keyframes>
"""
KEYFRAME = """  <keyframe time="{time}" color-label="0" frame="{file}">
   <offset x="0" type="point" y="0"/>
  </keyframe>
"""
INDEX = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE animation-metadata PUBLIC '-//KDE//DTD krita 1.1//EN' 'http://www.calligra.org/DTD/krita-1.1.dtd'>
<animation-metadata xmlns="http://www.calligra.org/DTD/krita">
 <framerate type="value" value="24"/>
 <range to="{end}" type="timerange" from="0"/>
 <currentTime type="value" value="0"/>
</animation-metadata>
"""


def frame_pixels(k):
    """Frame k, H x W x 4 u8 R, G, B, A: a gradient with a square moving 8 px to the right per frame."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgba = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    rgba[..., 0] = x * 255 // (WIDTH - 1)
    rgba[..., 1] = y * 255 // (HEIGHT - 1)
    rgba[..., 2] = 96
    rgba[..., 3] = 255
    rgba[12:30, 8 + 8 * k:26 + 8 * k, :3] = (250, 240, 30)
    return rgba


def tile_file(rgba):
    """Krita's tile file of an R, G, B, A picture placed at 0, 0 (tiles stored uncompressed)."""
    height, width = rgba.shape[:2]
    tiles = []
    for top in range(0, height, TILE):
        for left in range(0, width, TILE):
            tile = np.zeros((TILE, TILE, 4), np.uint8)
            part = rgba[top:top + TILE, left:left + TILE]
            tile[:part.shape[0], :part.shape[1]] = part[..., [2, 1, 0, 3]]
            data = b"\0" + tile.tobytes()
            tiles.append(b"%d,%d,LZF,%d\n" % (left, top, len(data)) + data)
    header = b"VERSION 2\nTILEWIDTH %d\nTILEHEIGHT %d\nPIXELSIZE 4\nDATA %d\n" % (TILE, TILE, len(tiles))
    return header + b"".join(tiles)


def animation_kra(root, name="animation"):
    """Write `root`/`name`.kra; returns its path."""
    path = os.path.join(root, name + ".kra")
    background = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    background[...] = (40, 40, 40, 255)
    names = ["layer2"] + ["layer2.f%d" % (k + 1) for k in range(1, len(TIMES))]
    end = TIMES[-1] + 1
    with zipfile.ZipFile(path, "w") as kra:
        kra.writestr(zipfile.ZipInfo("mimetype"), "application/x-krita")   # first and stored, as ODF wants
        kra.writestr("maindoc.xml", MAINDOC.format(w=WIDTH, h=HEIGHT, end=end), zipfile.ZIP_DEFLATED)
        kra.writestr("animation/animation/index.xml", INDEX.format(end=end), zipfile.ZIP_DEFLATED)
        frames = "".join(KEYFRAME.format(time=t, file=name) for t, name in zip(TIMES, names))
        kra.writestr("animation/layers/layer2.keyframes.xml", KEYFRAMES.format(frames=frames), zipfile.ZIP_DEFLATED)
        for k, name in enumerate(names):
            kra.writestr("animation/layers/" + name, tile_file(frame_pixels(k)), zipfile.ZIP_DEFLATED)
            kra.writestr("animation/layers/%s.defaultpixel" % name, b"\0\0\0\0")
        kra.writestr("animation/layers/layer3", tile_file(background), zipfile.ZIP_DEFLATED)
        kra.writestr("animation/layers/layer3.defaultpixel", b"\0\0\0\0")
    return path
