// Types of scripts/k8s-tools.mjs.
export declare function k8sTools(): { dir: string; helm: string; kubectl: string };
