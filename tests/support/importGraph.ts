/**
 * The program's own import graph, read from its import statements (no compiler, no rendering): which file imports
 * which, the cycles in it, and the imports that cross a boundary the layout forbids (tests/layout.test.ts).
 *
 * Read: `import ... from "x"` and `export ... from "x"` (type-only ones too: a cycle of types is still one the reader
 * follows), `import "x"`, `require("x")` and `import("x")`. Only relative specifiers are edges; packages are not the
 * program's. A statement counts only where a line starts with it, so a doc comment quoting one is no edge.
 */
import * as fs from "fs";
import * as path from "path";

/** Every `.ts` file under `dir` (relative to `root`), by its path relative to `root` with `/` separators, and its text. */
export function readSources(root: string, dir: string): Record<string, string> {
    const sources: Record<string, string> = {};
    const walk = (relative: string): void => {
        for (const entry of fs.readdirSync(path.join(root, relative), { withFileTypes: true })) {
            const child = path.posix.join(relative, entry.name);
            if (entry.isDirectory()) walk(child);
            else if (entry.name.endsWith(".ts")) sources[child] = fs.readFileSync(path.join(root, child), "utf8");
        }
    };
    walk(dir);
    return sources;
}

const importClause = String.raw`(?:type\s+)?(?:\*\s*as\s+[\w$]+|\*|[\w$]+(?:\s*,\s*(?:\{[^}]*\}|\*\s*as\s+[\w$]+))?|\{[^}]*\})`;
const statementPatterns = [
    new RegExp(String.raw`^[ \t]*(?:import|export)\s+${importClause}\s*from\s*["']([^"']+)["']`, "gm"),
    /^[ \t]*import\s*["']([^"']+)["']/gm,
    /^(?![ \t]*\/\/)[^*\n]*?\b(?:require|import)\s*\(\s*["']([^"']+)["']\s*\)/gm,
];

/** The specifiers a file's statements import, in order of the patterns above. */
export function importSpecifiers(source: string): string[] {
    return statementPatterns.flatMap((pattern) => [...source.matchAll(pattern)].map((match) => match[1]));
}

/**
 * The file each relative import of each file resolves to (`x.ts`, else `x/index.ts`), among `sources`' files. An
 * import that resolves to none of them is kept as `unresolved`, so a check never passes because it could not see.
 */
export function importGraph(sources: Record<string, string>): { edges: Record<string, string[]>; unresolved: string[] } {
    const edges: Record<string, string[]> = {};
    const unresolved: string[] = [];
    for (const [file, source] of Object.entries(sources)) {
        edges[file] = [];
        for (const specifier of importSpecifiers(source).filter((s) => s.startsWith("."))) {
            const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
            const target = [`${base}.ts`, `${base}/index.ts`, base].find((candidate) => candidate in sources);
            if (target === undefined) {
                // JSON data (components/image-lock.json) is no part of the graph.
                if (!specifier.endsWith(".json")) unresolved.push(`${file}: ${specifier}`);
            } else if (!edges[file].includes(target)) {
                edges[file].push(target);
            }
        }
    }
    return { edges, unresolved };
}

/** The graph's cycles: each strongly connected set of more than one file (or a file importing itself), sorted. */
export function importCycles(edges: Record<string, string[]>): string[][] {
    // Tarjan's strongly connected components; the recursion is as deep as the longest import chain.
    let counter = 0;
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    const visit = (file: string): void => {
        index.set(file, counter);
        low.set(file, counter);
        counter++;
        stack.push(file);
        onStack.add(file);
        for (const target of edges[file] ?? []) {
            if (!index.has(target)) {
                visit(target);
                low.set(file, Math.min(low.get(file)!, low.get(target)!));
            } else if (onStack.has(target)) {
                low.set(file, Math.min(low.get(file)!, index.get(target)!));
            }
        }
        if (low.get(file) === index.get(file)) {
            const component: string[] = [];
            let member: string;
            do {
                member = stack.pop()!;
                onStack.delete(member);
                component.push(member);
            } while (member !== file);
            if (component.length > 1 || (edges[file] ?? []).includes(file)) cycles.push(component.sort());
        }
    };
    for (const file of Object.keys(edges).sort()) {
        if (!index.has(file)) visit(file);
    }
    return cycles;
}

/** The imports from files under `fromDir` of files under `toDir` (both ending in `/`), as "importer -> imported". */
export function importsAcross(edges: Record<string, string[]>, fromDir: string, toDir: string): string[] {
    return Object.entries(edges).flatMap(([file, targets]) =>
        file.startsWith(fromDir) ? targets.filter((target) => target.startsWith(toDir)).map((target) => `${file} -> ${target}`) : [],
    );
}
