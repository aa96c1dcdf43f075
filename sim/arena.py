"""The walled tabletop arena the planar native tasks share: MJCF and wall geometry.

The arena spans [-1, 1]^2 seen by a top-down camera; walls are axis-aligned boxes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HALF = 1.0  # arena half-size in metres
WALL_HALF_THICKNESS = 0.05


@dataclass(frozen=True)
class Wall:
    """An axis-aligned box wall: centre (x, y) and half sizes (hx, hy)."""

    x: float
    y: float
    hx: float
    hy: float

    def xml(self, name: str) -> str:
        return (f'<geom name="{name}" type="box" pos="{self.x} {self.y} 0.1" size="{self.hx} {self.hy} 0.1" '
                f'rgba="0.15 0.2 0.45 1" contype="1" conaffinity="1"/>')

    def clearance(self, point: np.ndarray) -> float:
        """Distance from a point to the wall's rectangle (0 inside)."""
        dx = max(abs(point[0] - self.x) - self.hx, 0.0)
        dy = max(abs(point[1] - self.y) - self.hy, 0.0)
        return float(np.hypot(dx, dy))

    def blocks(self, a: np.ndarray, b: np.ndarray, margin: float) -> bool:
        """Whether the segment a->b passes within `margin` of the wall (slab clipping)."""
        t0, t1 = 0.0, 1.0
        direction = b - a
        for axis, centre, half in ((0, self.x, self.hx + margin), (1, self.y, self.hy + margin)):
            if abs(direction[axis]) < 1e-12:
                if abs(a[axis] - centre) > half:
                    return False
                continue
            ta = (centre - half - a[axis]) / direction[axis]
            tb = (centre + half - a[axis]) / direction[axis]
            t0, t1 = max(t0, min(ta, tb)), min(t1, max(ta, tb))
            if t0 > t1:
                return False
        return True


def arena_xml(walls: list[Wall], bodies: str, actuators: str, floor_rgba: str = "0.82 0.82 0.78 1") -> str:
    """A complete MJCF model: floor, outer walls, inner walls, top camera, one light, and the task's bodies."""
    outer = [Wall(0, HALF + WALL_HALF_THICKNESS, HALF + 2 * WALL_HALF_THICKNESS, WALL_HALF_THICKNESS),
             Wall(0, -HALF - WALL_HALF_THICKNESS, HALF + 2 * WALL_HALF_THICKNESS, WALL_HALF_THICKNESS),
             Wall(HALF + WALL_HALF_THICKNESS, 0, WALL_HALF_THICKNESS, HALF),
             Wall(-HALF - WALL_HALF_THICKNESS, 0, WALL_HALF_THICKNESS, HALF)]
    wall_xml = "\n    ".join(w.xml(f"wall{i}") for i, w in enumerate(outer + walls))
    return f"""<mujoco model="hvp-arena">
  <option timestep="0.01" gravity="0 0 -9.81"/>
  <worldbody>
    <light name="sun" directional="true" pos="0 0 3" dir="0 0 -1" diffuse="0.8 0.8 0.8" castshadow="false"/>
    <camera name="top" pos="0 0 2.75" fovy="45"/>
    <!-- grid spacing 1.2: one quad, cheaper in software GL, identical pixels -->
    <geom name="floor" type="plane" size="1.2 1.2 1.2" rgba="{floor_rgba}" contype="0" conaffinity="0"/>
    {wall_xml}
    {bodies}
  </worldbody>
  <actuator>
    {actuators}
  </actuator>
</mujoco>"""


def sample_free_point(rng: np.random.Generator, walls: list[Wall], clearance: float,
                      half: float = HALF) -> np.ndarray:
    """A point in the arena at least `clearance` away from every wall (inner and outer)."""
    for _ in range(10_000):
        point = rng.uniform(-half + clearance, half - clearance, size=2)
        if all(w.clearance(point) >= clearance for w in walls):
            return point
    raise RuntimeError(f"no free point with clearance {clearance} in this layout")


def planar_mover_xml(name: str, geom: str, damping: float, gear: float) -> tuple[str, str]:
    """A body on two slide joints (qpos = its x, y) driven by two motors: (body xml, actuator xml)."""
    body = f"""<body name="{name}" pos="0 0 0">
      <joint name="{name}_x" type="slide" axis="1 0 0" damping="{damping}"/>
      <joint name="{name}_y" type="slide" axis="0 1 0" damping="{damping}"/>
      {geom}
    </body>"""
    actuators = (f'<motor joint="{name}_x" gear="{gear}" ctrlrange="-1 1" ctrllimited="true"/>\n    '
                 f'<motor joint="{name}_y" gear="{gear}" ctrlrange="-1 1" ctrllimited="true"/>')
    return body, actuators
